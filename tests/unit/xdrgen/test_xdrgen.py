#!/usr/bin/env python3
"""tools/xdrgen.py refuses bad input with a file:line message (ctest unit_xdrgen).

    test_xdrgen.py path/to/xdrgen.py
"""
import os
import subprocess
import sys
import tempfile

# (input, line of the error, part of the message)
BAD = [
    ("const A = ;", 1, "expected a constant"),
    ("struct s {\n int a;\n int a;\n};", 3, "appears twice"),
    ("struct s {\n foo a;\n};", 2, "unknown type 'foo'"),
    ("union u switch (int d) {\ncase 1: int a;\ncase 1: int b;\n};", 3, "repeats case"),
    ("enum e { A = 1,\n B = 1 };", 2, "same value"),
    ("union u switch (hyper d) { case 1: void; };", 1, "discriminant must be"),
    ("struct s { int while; };", 1, "C keyword"),
    ("struct s { int default; };", 1, "keyword 'default'"),
    ("\n/* never closed\n", 2, "unterminated"),
    ("struct s { int a }", 1, "expected ';'"),
    ("struct aa { bb x; };\nstruct bb { aa y; };", 2, "contains itself"),
    ("const A = B;\nconst B = A;", 2, "in terms of itself"),
    ("typedef void t;", 1, "cannot typedef void"),
    ("struct s { int a; };\nstruct s { int b; };", 2, "redefines"),
    ("struct s { opaque x<0>; };", 1, "maximum of 0"),
    ("union u switch (bool b) {\ncase 2: void;\n};", 2, "not a bool"),
    ("enum e { A = 1 };\nunion u switch (e d) {\ncase 5: void;\n};", 3, "not a value of enum"),
    ("const A = 1;\n$", 2, "unexpected character"),
    ("const A = 1;\nenum e { A = 2 };", 2, "redefines"),
    ("union u switch (int stat) {\ncase 1:\n int stat;\n};", 3, "used twice"),
    ("const A = 09;", 1, "bad octal"),
    ("struct xdr_thing { int a; };", 1, "reserved prefix"),
    ("struct s { string x[4]; };", 1, "string needs <>"),
    ("struct s { int a; } ", 1, "expected ';'"),
    ("program P { version V { void F(void) = 0; } = 1; }", 1, "expected '='"),
    ("program P {\n version V {\n nosuch F(void) = 1;\n } = 1;\n} = 5;", 3, "unknown type"),
    ("struct s { int a; };\nunion u switch (s d) { case 1: void; };", 2, "discriminant must be"),
    ("struct s { float f; };", 1, "not supported"),
    ("typedef opaque z[0];", 1, "size 0"),
]

GOOD = """
const N = 4;
struct s { int a; s *next; };
union u switch (unsigned int d) { case 1: s one; default: void; };
program P { version V { u F(s) = 1; } = 1; } = 0x20000000;
"""


def run(gen, text, tmp):
    src = os.path.join(tmp, "t.x")
    with open(src, "w") as f:
        f.write(text)
    p = subprocess.run([sys.executable, gen, src, "--header", os.path.join(tmp, "t.h"),
                        "--source", os.path.join(tmp, "t.c"),
                        "--test-table", os.path.join(tmp, "t_test.c")],
                       capture_output=True, text=True)
    return p.returncode, p.stderr.strip(), src


def main():
    gen = sys.argv[1]
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        for text, line, part in BAD:
            rc, err, src = run(gen, text, tmp)
            want = "%s:%d: error:" % (src, line)
            if rc == 0 or not err.startswith(want) or part not in err:
                print("FAIL: %r\n  want %s ... %s\n  got rc=%d %s" % (text, want, part, rc, err))
                failures += 1
        rc, err, _ = run(gen, GOOD, tmp)
        if rc != 0:
            print("FAIL: valid input refused: %s" % err)
            failures += 1
        else:
            with open(os.path.join(tmp, "t.h")) as f:
                h = f.read()
            for want in ("#define N 4", "#define P 0x20000000", "struct s {", "s *next;",
                         "bool xdr_decode_u(struct xdr_dec *x, u *v);",
                         "#define V_PROCEDURES(X)", "X(F, 1, s, u)"):
                if want not in h:
                    print("FAIL: header lacks %r" % want)
                    failures += 1
    print("test_xdrgen: %d cases, %d failure(s)" % (len(BAD) + 1, failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
