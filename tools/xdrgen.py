#!/usr/bin/env python3
"""xdrgen: C codecs from XDR (RFC 4506) and RPC program definitions (RFC 5531 s.12).

    xdrgen.py IN.x --header OUT.h --source OUT.c [--test-table OUT_test.c]

The generated code uses the primitives of src/xdr/xdr.h and allocates nothing but
arena memory (struct xdr_arena), so a decoder's memory use is bounded by its arena and
every wire length is checked before it is used. Mapping (see docs in the header):

    const N = v;              #define N v
    enum e { A = 1 };         enum e { A = 1 }; typedef enum e e;
    struct s { ... };         typedef struct s s; struct s { ... };
    union u switch (d) ...    struct u { <disc>; union { <arms> }; };  (anonymous C11 union)
    int / unsigned int        int32_t / uint32_t
    hyper / unsigned hyper    int64_t / uint64_t
    bool                      bool
    opaque x[N]               uint8_t x[N]                 (copied)
    opaque x<N>               struct xdr_opaque x          (points into the decode buffer)
    string x<N>               struct xdr_string x          (same, not NUL-terminated)
    T x[N]                    T x[N]
    T x<N>                    struct { uint32_t len; T *val; } x   (val from the arena)
    T *x                      T *x                          (from the arena, NULL = absent)

For every type NAME:  bool xdr_encode_NAME(struct xdr_enc *, const NAME *);
                      bool xdr_decode_NAME(struct xdr_dec *, NAME *);
A struct whose last field is an optional pointer to its own type (a linked list such
as RFC 1813 entry3) is encoded and decoded by a loop, never by recursion.

Anonymous types nested in a declaration (RFC 5531 rpc_msg's body union, say) become
named types PARENT_FIELD.

Standard library only.
"""

import argparse
import os
import re
import sys

C_KEYWORDS = {
    "auto", "break", "case", "char", "const", "continue", "default", "do", "double",
    "else", "enum", "extern", "float", "for", "goto", "if", "inline", "int", "long",
    "register", "restrict", "return", "short", "signed", "sizeof", "static", "struct",
    "switch", "typedef", "union", "unsigned", "void", "volatile", "while", "_Bool",
    "_Complex", "_Imaginary", "_Alignas", "_Alignof", "_Atomic", "_Generic",
    "_Noreturn", "_Static_assert", "_Thread_local",
    # <stdbool.h> / <stddef.h> / <stdint.h> names the generated code relies on
    "bool", "true", "false", "NULL", "size_t",
    "int8_t", "int16_t", "int32_t", "int64_t", "uint8_t", "uint16_t", "uint32_t",
    "uint64_t",
}
# Names used by the generated functions for parameters and locals.
RESERVED_TYPE_NAMES = {"x", "v", "i", "n", "r", "a", "more", "present", "k"}

XDR_KEYWORDS = {
    "bool", "case", "const", "default", "double", "quadruple", "enum", "float",
    "hyper", "int", "opaque", "string", "struct", "switch", "typedef", "union",
    "unsigned", "void", "program", "version", "long",
}

UINT32_MAX = 0xFFFFFFFF


class XdrError(Exception):
    def __init__(self, path, line, msg):
        super().__init__(msg)
        self.path = path
        self.line = line
        self.msg = msg

    def __str__(self):
        return "%s:%d: error: %s" % (self.path, self.line, self.msg)


# ---------------------------------------------------------------- lexer

class Tok:
    __slots__ = ("kind", "val", "line", "num")

    def __init__(self, kind, val, line, num=None):
        self.kind = kind  # 'id', 'num', 'p' (punctuation), 'eof'
        self.val = val
        self.line = line
        self.num = num

    def __repr__(self):
        return "%s(%r)@%d" % (self.kind, self.val, self.line)


IDENT_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
NUM_RE = re.compile(r"-?(0[xX][0-9a-fA-F]+|[0-9]+)(?![A-Za-z0-9_])")
PUNCT = set("{}()[]<>;,=*:")


def lex(text, path):
    toks = []
    i, n, line = 0, len(text), 1
    line_start = True  # only whitespace seen since the last newline
    while i < n:
        c = text[i]
        if c == "\n":
            line += 1
            i += 1
            line_start = True
            continue
        if c in " \t\r\f\v":
            i += 1
            continue
        if c == "%" and line_start:  # rpcgen passthrough line: ignored
            j = text.find("\n", i)
            i = n if j < 0 else j
            continue
        line_start = False
        if text.startswith("/*", i):
            j = text.find("*/", i + 2)
            if j < 0:
                raise XdrError(path, line, "unterminated /* comment")
            line += text.count("\n", i, j)
            i = j + 2
            continue
        if text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
            continue
        m = IDENT_RE.match(text, i)
        if m:
            toks.append(Tok("id", m.group(0), line))
            i = m.end()
            continue
        m = NUM_RE.match(text, i)
        if m:
            s = m.group(0)
            body = s.lstrip("-")
            if body[:2] in ("0x", "0X"):
                v = int(body, 16)
            elif len(body) > 1 and body[0] == "0":
                if re.search(r"[89]", body):
                    raise XdrError(path, line, "bad octal constant '%s'" % s)
                v = int(body, 8)
            else:
                v = int(body, 10)
            if s.startswith("-"):
                v = -v
            toks.append(Tok("num", s, line, v))
            i = m.end()
            continue
        if c in PUNCT:
            toks.append(Tok("p", c, line))
            i += 1
            continue
        raise XdrError(path, line, "unexpected character %r" % c)
    toks.append(Tok("eof", "end of file", line))
    return toks


# ---------------------------------------------------------------- syntax tree

class Value:
    """An integer constant as written: a number or the name of a constant."""

    def __init__(self, line, num=None, ident=None, text=None):
        self.line = line
        self.num = num
        self.ident = ident
        self.text = text if text is not None else (ident if ident else str(num))

    def __repr__(self):
        return self.text


class TypeSpec:
    """A type: builtin kind ('int', 'uint', 'hyper', 'uhyper', 'bool', 'float',
    'double', 'quadruple') or 'named' with a name (or an anonymous definition)."""

    def __init__(self, kind, line, name=None, anon=None):
        self.kind = kind
        self.line = line
        self._name = name
        self.anon = anon

    @property
    def name(self):
        return self.anon.name if self.anon is not None else self._name


class Decl:
    """kind: 'plain', 'fixed' ([N]), 'var' (<N>), 'opt' (*), 'void'.
    base: 'opaque', 'string' or a TypeSpec."""

    def __init__(self, kind, base, name, line, size=None):
        self.kind = kind
        self.base = base
        self.name = name
        self.line = line
        self.size = size  # Value, or None for <> and for plain/opt/void

    def ts(self):
        return self.base if isinstance(self.base, TypeSpec) else None


class Def:
    def __init__(self, what, name, line):
        self.what = what  # 'const', 'enum', 'struct', 'union', 'typedef', 'program'
        self.name = name
        self.line = line
        self.anon_parent = None  # for hoisted anonymous types
        self.anon_field = None


class ConstDef(Def):
    def __init__(self, name, line, value):
        super().__init__("const", name, line)
        self.value = value


class EnumDef(Def):
    def __init__(self, name, line):
        super().__init__("enum", name, line)
        self.members = []  # (name, Value, line)


class StructDef(Def):
    def __init__(self, name, line):
        super().__init__("struct", name, line)
        self.fields = []
        self.link = None  # the self-referential last field of a list node


class UnionDef(Def):
    def __init__(self, name, line):
        super().__init__("union", name, line)
        self.disc = None
        self.arms = []  # (labels [Value], Decl)
        self.default = None  # Decl or None
        self.has_default = False


class TypedefDef(Def):
    def __init__(self, name, line, decl):
        super().__init__("typedef", name, line)
        self.decl = decl


class Proc:
    def __init__(self, name, line, ret, args, value):
        self.name = name
        self.line = line
        self.ret = ret  # text as written
        self.args = args  # list of texts ('void' for none)
        self.value = value


class Version:
    def __init__(self, name, line):
        self.name = name
        self.line = line
        self.procs = []
        self.value = None


class ProgramDef(Def):
    def __init__(self, name, line):
        super().__init__("program", name, line)
        self.versions = []
        self.value = None


# ---------------------------------------------------------------- parser

class Parser:
    def __init__(self, toks, path):
        self.toks = toks
        self.pos = 0
        self.path = path
        self.defs = []
        self.anon_count = 0

    def err(self, msg, line=None):
        raise XdrError(self.path, self.peek().line if line is None else line, msg)

    def peek(self, k=0):
        return self.toks[min(self.pos + k, len(self.toks) - 1)]

    def next(self):
        t = self.toks[self.pos]
        if t.kind != "eof":
            self.pos += 1
        return t

    def at(self, val, k=0):
        t = self.peek(k)
        return t.kind in ("id", "p") and t.val == val

    def accept(self, val):
        if self.at(val):
            return self.next()
        return None

    def expect(self, val, what=None):
        t = self.peek()
        if t.kind in ("id", "p") and t.val == val:
            return self.next()
        self.err("expected '%s'%s, found '%s'" % (val, " " + what if what else "", t.val))

    def ident(self, what="identifier"):
        t = self.peek()
        if t.kind != "id":
            self.err("expected %s, found '%s'" % (what, t.val))
        if t.val in XDR_KEYWORDS:
            self.err("expected %s, found keyword '%s'" % (what, t.val))
        return self.next()

    def value(self):
        t = self.peek()
        if t.kind == "num":
            self.next()
            return Value(t.line, num=t.num, text=t.val)
        if t.kind == "id" and t.val not in XDR_KEYWORDS:
            self.next()
            return Value(t.line, ident=t.val)
        self.err("expected a constant or constant name, found '%s'" % t.val)

    # specification: definition*
    def parse(self):
        while self.peek().kind != "eof":
            self.definition()
        return self.defs

    def definition(self):
        t = self.peek()
        if self.at("const"):
            self.next()
            name = self.ident("constant name")
            self.expect("=")
            v = self.value()
            self.expect(";", "after constant definition")
            self.defs.append(ConstDef(name.val, name.line, v))
        elif self.at("typedef"):
            self.next()
            if self.at("void"):
                self.err("cannot typedef void")
            d = self.declaration(None)
            self.expect(";", "after typedef")
            if d.kind == "void":
                self.err("cannot typedef void", d.line)
            ts = d.ts()
            if d.kind == "plain" and ts is not None and ts.anon is not None:
                ts.anon.name = d.name  # typedef struct { ... } name;
                ts.anon.anon_parent = None
            else:
                self.defs.append(TypedefDef(d.name, d.line, d))
        elif self.at("enum") or self.at("struct") or self.at("union"):
            kw = self.next().val
            name = self.ident("%s name" % kw)
            self.body(kw, name.val, name.line, None)
            self.expect(";", "after %s definition" % kw)
        elif self.at("program"):
            self.program()
        else:
            self.err("expected a definition (const, typedef, enum, struct, union, program), "
                     "found '%s'" % t.val)

    def body(self, kw, name, line, parent):
        """Parse an enum/struct/union body; appends the definition and returns it."""
        if kw == "enum":
            d = EnumDef(name, line)
            self.enum_body(d)
        elif kw == "struct":
            d = StructDef(name, line)
            self.struct_body(d)
        else:
            d = UnionDef(name, line)
            self.union_body(d)
        if parent is not None or name is None:
            d.anon_parent = parent
        self.defs.append(d)
        return d

    def enum_body(self, d):
        self.expect("{", "to open enum body")
        nextval = 0
        while True:
            m = self.ident("enumerator name")
            if self.accept("="):
                v = self.value()
            elif nextval is None:
                self.err("enumerator %s needs an explicit value (the one before it is "
                         "symbolic)" % m.val, m.line)
            else:  # C style: previous + 1
                v = Value(m.line, num=nextval, text=str(nextval))
            d.members.append((m.val, v, m.line))
            nextval = (v.num + 1) if v.num is not None else None
            if self.accept(","):
                if self.at("}"):
                    break
                continue
            break
        self.expect("}", "to close enum body")

    def struct_body(self, d):
        self.expect("{", "to open struct body")
        while not self.at("}"):
            f = self.declaration(d)
            if f.kind == "void":
                self.err("void is only allowed as a union arm", f.line)
            self.expect(";", "after struct field")
            d.fields.append(f)
        if not d.fields:
            self.err("empty struct")
        self.expect("}")

    def union_body(self, d):
        self.expect("switch", "to start union body")
        self.expect("(")
        d.disc = self.declaration(d)
        if d.disc.kind != "plain":
            self.err("union discriminant must be a plain int, unsigned int, enum or bool",
                     d.disc.line)
        self.expect(")")
        self.expect("{", "to open union body")
        while not self.at("}"):
            if self.at("case"):
                labels = []
                while self.accept("case"):
                    labels.append(self.value())
                    self.expect(":", "after case label")
                arm = self.declaration(d)
                self.expect(";", "after union arm")
                d.arms.append((labels, arm))
            elif self.at("default"):
                if d.has_default:
                    self.err("second default arm")
                self.next()
                self.expect(":", "after default")
                d.default = self.declaration(d)
                d.has_default = True
                self.expect(";", "after default arm")
            else:
                self.err("expected 'case' or 'default', found '%s'" % self.peek().val)
        if not d.arms:
            self.err("union without case arms")
        self.expect("}")

    def type_spec(self, parent):
        t = self.peek()
        if t.kind != "id":
            self.err("expected a type, found '%s'" % t.val)
        v = t.val
        if v == "unsigned":
            self.next()
            if self.accept("int") or self.accept("long"):
                return TypeSpec("uint", t.line)
            if self.accept("hyper"):
                return TypeSpec("uhyper", t.line)
            if self.at("char") or self.at("short"):
                self.err("unsigned %s is not an XDR type" % self.peek().val)
            return TypeSpec("uint", t.line)  # bare 'unsigned'
        if v in ("int", "long"):
            self.next()
            return TypeSpec("int", t.line)
        if v == "hyper":
            self.next()
            return TypeSpec("hyper", t.line)
        if v in ("bool", "float", "double", "quadruple"):
            self.next()
            return TypeSpec(v, t.line)
        if v in ("enum", "struct", "union"):
            self.next()
            if self.at("{") or (v == "union" and self.at("switch")):
                d = self.body(v, None, t.line, parent)
                return TypeSpec("named", t.line, anon=d)
            name = self.ident("%s name" % v)
            return TypeSpec("named", name.line, name=name.val)
        if v in ("opaque", "string", "void"):
            self.err("'%s' cannot be used here" % v)
        if v in XDR_KEYWORDS:
            self.err("expected a type, found keyword '%s'" % v)
        self.next()
        return TypeSpec("named", t.line, name=v)

    def declaration(self, parent):
        t = self.peek()
        if self.accept("void"):
            return Decl("void", None, None, t.line)
        if self.at("opaque") or self.at("string"):
            kw = self.next().val
            name = self.ident("name")
            if self.accept("["):
                if kw == "string":
                    self.err("string needs <> (variable length), not []")
                size = self.value()
                self.expect("]")
                return Decl("fixed", kw, name.val, name.line, size)
            if self.accept("<"):
                size = None if self.at(">") else self.value()
                self.expect(">")
                return Decl("var", kw, name.val, name.line, size)
            if kw == "string":
                self.err("string needs <> after the name")
            self.err("opaque needs [N] or <N> after the name")
        ts = self.type_spec(parent)
        if self.accept("*"):
            name = self.ident("name")
            d = Decl("opt", ts, name.val, name.line)
        else:
            name = self.ident("name")
            if self.accept("["):
                size = self.value()
                self.expect("]")
                d = Decl("fixed", ts, name.val, name.line, size)
            elif self.accept("<"):
                size = None if self.at(">") else self.value()
                self.expect(">")
                d = Decl("var", ts, name.val, name.line, size)
            else:
                d = Decl("plain", ts, name.val, name.line)
        if ts.anon is not None:
            ts.anon.anon_field = d.name
        return d

    def proc_type(self):
        """A procedure's argument or result type, kept as text."""
        if self.accept("void"):
            return "void"
        if self.at("string") or self.at("opaque"):
            return self.next().val
        ts = self.type_spec(None)
        if ts.anon is not None:
            self.err("anonymous types are not allowed in procedure definitions")
        if ts.kind == "named":
            return ts.name
        return {"uint": "unsigned int", "uhyper": "unsigned hyper"}.get(ts.kind, ts.kind)

    def program(self):
        self.expect("program")
        name = self.ident("program name")
        p = ProgramDef(name.val, name.line)
        self.expect("{", "to open program body")
        while not self.at("}"):
            self.expect("version", "(a program holds version blocks)")
            vn = self.ident("version name")
            ver = Version(vn.val, vn.line)
            self.expect("{", "to open version body")
            while not self.at("}"):
                ret = self.proc_type()
                pn = self.ident("procedure name")
                self.expect("(")
                args = [self.proc_type()]
                while self.accept(","):
                    args.append(self.proc_type())
                self.expect(")")
                self.expect("=")
                val = self.value()
                self.expect(";", "after procedure")
                ver.procs.append(Proc(pn.val, pn.line, ret, args, val))
            self.expect("}")
            self.expect("=")
            ver.value = self.value()
            self.expect(";", "after version")
            p.versions.append(ver)
        if not p.versions:
            self.err("program without versions")
        self.expect("}")
        self.expect("=")
        p.value = self.value()
        self.expect(";", "after program")
        self.defs.append(p)


# ---------------------------------------------------------------- analysis

BUILTIN_C = {
    "int": "int32_t", "uint": "uint32_t", "hyper": "int64_t", "uhyper": "uint64_t",
    "bool": "bool",
}
BUILTIN_SIZE = {"int": 4, "uint": 4, "hyper": 8, "uhyper": 8, "bool": 4, "float": 4,
                "double": 8, "quadruple": 16}


class Spec:
    def __init__(self, defs, path):
        self.defs = defs
        self.path = path
        self.types = {}  # name -> enum/struct/union/typedef def
        self.values = {}  # name -> (Value or int, line)  consts, enumerators, rpc names
        self.enum_of_member = {}
        self.order = []  # type defs in C emission order
        self.minsize_memo = {}
        self.analyse()

    def err(self, line, msg):
        raise XdrError(self.path, line, msg)

    # -- names
    def check_c_name(self, name, line, what):
        if name in C_KEYWORDS:
            self.err(line, "%s '%s' is a C keyword or reserved C name; rename it" % (what, name))
        if name.startswith("xdr_") or name.startswith("xdrtest_"):
            self.err(line, "%s '%s' uses the reserved prefix xdr_/xdrtest_" % (what, name))

    def analyse(self):
        # name anonymous types after their parent and field
        for d in self.defs:
            if d.name is None:
                self.anon_name(d)
        globals_seen = {}

        def claim(name, line, what, value=None):
            self.check_c_name(name, line, what)
            if name in globals_seen:
                pline, pwhat, pval = globals_seen[name]
                # a procedure may appear with the same number in several versions
                if not (what == pwhat == "procedure" and value == pval):
                    self.err(line, "%s '%s' redefines the %s on line %d"
                             % (what, name, pwhat, pline))
                return False
            globals_seen[name] = (line, what, value)
            return True

        for d in self.defs:
            if d.what == "const":
                claim(d.name, d.line, "constant")
                self.values[d.name] = (d.value, d.line)
            elif d.what == "program":
                claim(d.name, d.line, "program")
                self.values[d.name] = (d.value, d.line)
                for ver in d.versions:
                    claim(ver.name, ver.line, "version")
                    self.values[ver.name] = (ver.value, ver.line)
                    for pr in ver.procs:
                        claim(pr.name, pr.line, "procedure", pr.value.text)
                        self.values[pr.name] = (pr.value, pr.line)
            else:
                claim(d.name, d.line, d.what)
                if d.name in RESERVED_TYPE_NAMES:
                    self.err(d.line, "type name '%s' is reserved by the generator" % d.name)
                self.types[d.name] = d
                if d.what == "enum":
                    for (m, v, mline) in d.members:
                        claim(m, mline, "enumerator")
                        self.values[m] = (v, mline)
                        self.enum_of_member[m] = d
        # resolve every value now so that errors point at the definition
        for name in list(self.values):
            self.resolve_name(name, self.values[name][1])
        for d in self.defs:
            if d.what == "enum":
                seen = {}
                for (m, v, mline) in d.members:
                    n = self.num(v)
                    if not -2**31 <= n < 2**31:
                        self.err(mline, "enumerator %s = %d does not fit in 32 bits" % (m, n))
                    if n in seen:
                        self.err(mline, "enumerator %s has the same value as %s" % (m, seen[n]))
                    seen[n] = m
            elif d.what == "struct":
                self.check_fields(d, [f.name for f in d.fields], d.fields)
                for f in d.fields:
                    self.check_decl(f)
            elif d.what == "union":
                self.check_union(d)
            elif d.what == "typedef":
                self.check_decl(d.decl)
                if d.decl.kind == "void":
                    self.err(d.line, "typedef %s has size 0" % d.name)
            elif d.what == "program":
                for ver in d.versions:
                    for pr in ver.procs:
                        for t in [pr.ret] + pr.args:
                            if " " in t or t in ("void", "string", "opaque") or t in BUILTIN_SIZE:
                                continue
                            if t not in self.types:
                                self.err(pr.line, "procedure %s uses unknown type '%s'"
                                         % (pr.name, t))
        for d in self.defs:
            if d.what == "struct":
                self.find_link(d)
        self.sort_types()

    def anon_name(self, d):
        if d.name is not None:
            return d.name
        p = d.anon_parent
        if p is None or d.anon_field is None:
            self.err(d.line, "anonymous %s outside a declaration" % d.what)
        d.name = self.anon_name(p) + "_" + d.anon_field
        return d.name

    def resolve_name(self, name, line, stack=()):
        v, vline = self.values[name]
        if isinstance(v, int):
            return v
        if v.num is not None:
            n = v.num
        else:
            if v.ident in stack or v.ident == name:
                self.err(vline, "constant '%s' is defined in terms of itself" % name)
            if v.ident not in self.values:
                self.err(vline, "unknown constant '%s'" % v.ident)
            n = self.resolve_name(v.ident, vline, stack + (name,))
        return n

    def num(self, v):
        if v.num is not None:
            return v.num
        if v.ident in ("TRUE", "FALSE") and v.ident not in self.values:
            return 1 if v.ident == "TRUE" else 0
        if v.ident not in self.values:
            self.err(v.line, "unknown constant '%s'" % v.ident)
        return self.resolve_name(v.ident, v.line)

    def check_fields(self, d, names, decls):
        seen = {}
        for f in decls:
            if f.kind == "void":
                continue
            self.check_c_name(f.name, f.line, "field")
            if f.name in seen:
                self.err(f.line, "field '%s' appears twice in %s" % (f.name, d.name))
            seen[f.name] = f

    def check_decl(self, f):
        if f.kind == "void":
            return
        ts = f.ts()
        if ts is not None:
            if ts.kind == "named":
                if ts.name not in self.types:
                    self.err(ts.line, "unknown type '%s'" % ts.name)
            elif ts.kind in ("float", "double", "quadruple"):
                self.err(ts.line, "%s is not supported by this generator" % ts.kind)
        if f.size is not None:
            n = self.num(f.size)
            if n < 0 or n > UINT32_MAX:
                self.err(f.line, "size %s of '%s' is out of range" % (f.size.text, f.name))
            if f.kind == "var" and n == 0:
                self.err(f.line, "a maximum of 0 makes '%s' always empty" % f.name)
            if f.kind == "fixed" and n == 0:
                # RFC 5531's 'opaque results[0]': a marker, nothing on the wire
                f.kind = "void"

    def base_kind(self, ts, line):
        """Follow typedefs from a type spec to a builtin kind or an enum def."""
        seen = set()
        while ts.kind == "named":
            d = self.types[ts.name]
            if d.what == "enum":
                return d
            if d.what != "typedef" or d.decl.kind != "plain" or d.decl.ts() is None:
                return None
            if ts.name in seen:
                self.err(line, "typedef loop at '%s'" % ts.name)
            seen.add(ts.name)
            ts = d.decl.ts()
        return ts.kind

    def check_union(self, d):
        disc = d.disc
        self.check_decl(disc)
        self.check_c_name(disc.name, disc.line, "discriminant")
        bk = self.base_kind(disc.ts(), disc.line) if disc.ts() else None
        if bk not in ("int", "uint", "bool") and not isinstance(bk, EnumDef):
            self.err(disc.line, "union %s: discriminant must be int, unsigned int, bool or an enum"
                     % d.name)
        d.disc_kind = bk
        arms = [a for (_, a) in d.arms] + ([d.default] if d.has_default else [])
        seen_names = {disc.name: disc}
        for a in arms:
            self.check_decl(a)
            if a.kind == "void":
                continue
            self.check_c_name(a.name, a.line, "arm")
            if a.name in seen_names:
                prev = seen_names[a.name]
                if prev is disc or self.c_decl(prev, "") != self.c_decl(a, ""):
                    self.err(a.line, "union %s: '%s' is used twice (as the discriminant or "
                             "with another type); C needs distinct member names"
                             % (d.name, a.name))
            seen_names[a.name] = a
        seen = {}
        for (labels, arm) in d.arms:
            for lab in labels:
                n = self.num(lab)
                if isinstance(bk, EnumDef):
                    vals = {self.num(v) for (_, v, _) in bk.members}
                    if n not in vals:
                        self.err(lab.line, "case %s is not a value of enum %s" % (lab.text, bk.name))
                elif bk == "bool" and n not in (0, 1):
                    self.err(lab.line, "case %s is not a bool (TRUE or FALSE)" % lab.text)
                elif bk == "int" and not -2**31 <= n < 2**31:
                    self.err(lab.line, "case %s does not fit in an int" % lab.text)
                elif bk == "uint" and not 0 <= n <= UINT32_MAX:
                    self.err(lab.line, "case %s does not fit in an unsigned int" % lab.text)
                if n in seen:
                    self.err(lab.line, "case %s repeats case %s" % (lab.text, seen[n]))
                seen[n] = lab.text

    # -- lists
    def opt_target(self, f):
        """If f is an optional (directly or through typedefs), the type it points to."""
        if f.kind == "opt":
            return self.strip_alias(f.ts().name) if f.ts().kind == "named" else None
        if f.kind == "plain" and f.ts() and f.ts().kind == "named":
            d = self.types[f.ts().name]
            seen = set()
            while d.what == "typedef" and d.name not in seen:
                seen.add(d.name)
                dd = d.decl
                if dd.kind == "opt":
                    return self.strip_alias(dd.ts().name) if dd.ts().kind == "named" else None
                if dd.kind != "plain" or not dd.ts() or dd.ts().kind != "named":
                    return None
                d = self.types[dd.ts().name]
        return None

    def strip_alias(self, name):
        d = self.types[name]
        seen = set()
        while d.what == "typedef" and d.decl.kind == "plain" and d.decl.ts() \
                and d.decl.ts().kind == "named" and d.name not in seen:
            seen.add(d.name)
            d = self.types[d.decl.ts().name]
        return d.name

    def find_link(self, d):
        last = d.fields[-1]
        if self.opt_target(last) == d.name:
            d.link = last

    # -- emission order: a type's body needs the complete types it holds by value
    def needs(self, f):
        """Definitions that must precede a C declaration of f."""
        out = []
        ts = f.ts()
        if f.kind == "void" or ts is None or ts.kind != "named":
            return out
        out.extend(self.need_type(ts.name, complete=f.kind in ("plain", "fixed")))
        return out

    def need_type(self, name, complete):
        d = self.types[name]
        if d.what in ("struct", "union"):
            return [d] if complete else []  # forward-declared otherwise
        if d.what == "enum":
            return [d]
        out = [d]
        dd = d.decl
        if complete and dd.kind in ("plain", "fixed") and dd.ts() and dd.ts().kind == "named":
            out.extend(self.need_type(dd.ts().name, True))
        return out

    def type_deps(self, d):
        if d.what == "struct":
            return [x for f in d.fields for x in self.needs(f)]
        if d.what == "union":
            fs = [d.disc] + [a for (_, a) in d.arms] + ([d.default] if d.default else [])
            return [x for f in fs for x in self.needs(f)]
        if d.what == "typedef":
            dd = d.decl
            ts = dd.ts()
            if ts is None or ts.kind != "named":
                return []
            t = self.types[ts.name]
            if dd.kind == "fixed":
                return self.need_type(ts.name, True)
            if t.what in ("struct", "union"):
                return []  # typedef of an incomplete struct is fine
            return [t]
        return []

    def sort_types(self):
        state = {}
        order = []

        def visit(d, via):
            st = state.get(d.name)
            if st == "done":
                return
            if st == "busy":
                self.err(via.line, "type '%s' contains itself by value (use * or <> to break "
                         "the cycle)" % d.name)
            state[d.name] = "busy"
            for dep in self.type_deps(d):
                visit(dep, d)
            state[d.name] = "done"
            order.append(d)

        for d in self.defs:
            if d.what == "enum":
                visit(d, d)
        for d in self.defs:
            if d.what in ("struct", "union", "typedef"):
                visit(d, d)
        self.order = order

    # -- sizes
    def min_size_decl(self, f):
        if f.kind == "void":
            return 0
        if f.kind in ("var", "opt"):
            return 4
        if f.base in ("opaque", "string"):
            return (self.num(f.size) + 3) & ~3  # fixed opaque
        ts = f.ts()
        one = BUILTIN_SIZE[ts.kind] if ts.kind != "named" else self.min_size_type(ts.name)
        return one * self.num(f.size) if f.kind == "fixed" else one

    def min_size_type(self, name):
        if name in self.minsize_memo:
            return self.minsize_memo[name]
        self.minsize_memo[name] = 0  # by-value cycles were rejected by sort_types
        d = self.types[name]
        if d.what == "enum":
            n = 4
        elif d.what == "struct":
            n = sum(self.min_size_decl(f) for f in d.fields)
        elif d.what == "union":
            arms = [a for (_, a) in d.arms] + ([d.default] if d.has_default else [])
            n = 4 + min(self.min_size_decl(a) for a in arms)
        else:
            n = self.min_size_decl(d.decl)
        self.minsize_memo[name] = n
        return n

    # -- C text
    def cval(self, v):
        if v.ident in ("TRUE", "FALSE") and v.ident not in self.values:
            return "1" if v.ident == "TRUE" else "0"
        return v.text

    def c_type(self, ts):
        if ts.kind == "named":
            return ts.name
        return BUILTIN_C[ts.kind]

    def c_decl(self, f, name):
        if f.kind == "void":
            return ""
        if f.base == "opaque":
            if f.kind == "fixed":
                return "uint8_t %s[%s]" % (name, self.cval(f.size))
            return "struct xdr_opaque %s" % name
        if f.base == "string":
            return "struct xdr_string %s" % name
        t = self.c_type(f.ts())
        if f.kind == "plain":
            return "%s %s" % (t, name)
        if f.kind == "fixed":
            return "%s %s[%s]" % (t, name, self.cval(f.size))
        if f.kind == "var":
            return "struct { uint32_t len; %s *val; } %s" % (t, name)
        return "%s *%s" % (t, name)

    def prim(self, f):
        """Inline primitive for a plain/fixed/var declaration, following typedefs:
        ('scalar', kind) | ('fixed_opaque', size) | ('var_opaque', max) | ('string', max)
        or None when a generated function must be called."""
        seen = set()
        while True:
            if f.kind == "void":
                return None
            if f.base == "opaque":
                if f.kind == "fixed":
                    return ("fixed_opaque", self.cval(f.size))
                return ("var_opaque", self.cval(f.size) if f.size else "0")
            if f.base == "string":
                return ("string", self.cval(f.size) if f.size else "0")
            if f.kind != "plain":
                return None
            ts = f.ts()
            if ts.kind != "named":
                return ("scalar", ts.kind)
            d = self.types[ts.name]
            if d.what != "typedef" or d.name in seen:
                return None
            seen.add(d.name)
            f = d.decl


# ---------------------------------------------------------------- code generation

SCALAR_ENC = {"int": "xdr_enc_i32", "uint": "xdr_enc_u32", "hyper": "xdr_enc_i64",
              "uhyper": "xdr_enc_u64", "bool": "xdr_enc_bool"}
SCALAR_DEC = {"int": "xdr_dec_i32", "uint": "xdr_dec_u32", "hyper": "xdr_dec_i64",
              "uhyper": "xdr_dec_u64", "bool": "xdr_dec_bool"}
SCALAR_SAMPLE = {"int": "(int32_t)xdrtest_u32(r)", "uint": "xdrtest_u32(r)",
                 "hyper": "(int64_t)xdrtest_u64(r)", "uhyper": "xdrtest_u64(r)",
                 "bool": "xdrtest_below(r, 2) != 0"}


def addr(lv):
    if lv.startswith("(*") and lv.endswith(")") and lv.count("(") == 1:
        return lv[2:-1]
    return "&" + lv


def member(lv, field):
    if lv.startswith("(*") and lv.endswith(")") and lv.count("(") == 1:
        return lv[2:-1] + "->" + field
    return lv + "." + field


def fail_if(cond):
    return ["if (%s)" % cond, "    return false;"]


class Gen:
    def __init__(self, spec, base, header_include):
        self.s = spec
        self.base = base
        self.header_include = header_include

    def plain_of(self, f):
        """The element declaration of an array/optional: a plain declaration of its type."""
        return Decl("plain", f.base, f.name, f.line)

    # -- encoding
    def enc(self, f, lv):
        s = self.s
        if f.kind == "void":
            return []
        p = s.prim(f)
        if p is not None:
            k, arg = p
            if k == "scalar":
                return fail_if("!%s(x, %s)" % (SCALAR_ENC[arg], lv))
            if k == "fixed_opaque":
                return fail_if("!xdr_enc_fixed(x, %s, %s)" % (lv, arg))
            if k == "var_opaque":
                return fail_if("!xdr_enc_opaque(x, %s, %s, %s)"
                               % (member(lv, "val"), member(lv, "len"), arg))
            return fail_if("!xdr_enc_string(x, %s, %s)" % (addr(lv), arg))
        if f.kind == "plain":
            return fail_if("!xdr_encode_%s(x, %s)" % (f.ts().name, addr(lv)))
        el = self.plain_of(f)
        if f.kind == "fixed":
            body = self.enc(el, "%s[i]" % lv)
            return ["for (uint32_t i = 0; i < %s; i++) {" % s.cval(f.size)] + \
                ["    " + b for b in body] + ["}"]
        if f.kind == "var":
            out = []
            ln = member(lv, "len")
            if f.size is not None:
                out += fail_if("%s > %s" % (ln, s.cval(f.size)))
            out += fail_if("!xdr_enc_u32(x, %s)" % ln)
            body = self.enc(el, "%s[i]" % member(lv, "val"))
            out += ["for (uint32_t i = 0; i < %s; i++) {" % ln] + \
                ["    " + b for b in body] + ["}"]
            return out
        # optional
        out = fail_if("!xdr_enc_bool(x, %s != NULL)" % lv)
        body = self.enc(el, "(*%s)" % lv)
        return out + ["if (%s) {" % lv] + ["    " + b for b in body] + ["}"]

    # -- decoding
    def dec(self, f, lv):
        s = self.s
        if f.kind == "void":
            return []
        p = s.prim(f)
        if p is not None:
            k, arg = p
            if k == "scalar":
                return fail_if("!%s(x, %s)" % (SCALAR_DEC[arg], addr(lv)))
            if k == "fixed_opaque":
                return fail_if("!xdr_dec_fixed_copy(x, %s, %s)" % (lv, arg))
            if k == "var_opaque":
                return fail_if("!xdr_dec_opaque(x, %s, %s)" % (addr(lv), arg))
            return fail_if("!xdr_dec_string(x, %s, %s)" % (addr(lv), arg))
        if f.kind == "plain":
            return fail_if("!xdr_decode_%s(x, %s)" % (f.ts().name, addr(lv)))
        el = self.plain_of(f)
        if f.kind == "fixed":
            body = self.dec(el, "%s[i]" % lv)
            return ["for (uint32_t i = 0; i < %s; i++) {" % s.cval(f.size)] + \
                ["    " + b for b in body] + ["}"]
        if f.kind == "var":
            ln, val = member(lv, "len"), member(lv, "val")
            mx = s.cval(f.size) if f.size is not None else "0"
            out = fail_if("!xdr_dec_count(x, &%s, %s, %d)" % (ln, mx, s.min_size_decl(el)))
            out += ["%s = NULL;" % val,
                    "if (%s) {" % ln,
                    "    %s = xdr_arena_alloc(x->arena, %s, sizeof(*%s));" % (val, ln, val),
                    "    if (!%s)" % val,
                    "        return false;",
                    "}"]
            body = self.dec(el, "%s[i]" % val)
            out += ["for (uint32_t i = 0; i < %s; i++) {" % ln] + \
                ["    " + b for b in body] + ["}"]
            return out
        # optional
        body = self.dec(el, "(*%s)" % lv)
        return ["{",
                "    bool present;",
                "    if (!xdr_dec_bool(x, &present))",
                "        return false;",
                "    %s = NULL;" % lv,
                "    if (present) {",
                "        %s = xdr_arena_alloc(x->arena, 1, sizeof(*%s));" % (lv, lv),
                "        if (!%s)" % lv,
                "            return false;"] + \
            ["        " + b for b in body] + ["    }", "}"]

    # -- sampling (test tables)
    def samp(self, f, lv):
        s = self.s
        if f.kind == "void":
            return []
        p = s.prim(f)
        if p is not None:
            k, arg = p
            if k == "scalar":
                return ["%s = %s;" % ("*v" if lv == "(*v)" else lv, SCALAR_SAMPLE[arg])]
            if k == "fixed_opaque":
                return ["xdrtest_fill(r, %s, %s);" % (lv, arg)]
            if k == "var_opaque":
                return ["%s = xdrtest_opaque(r, a, %s, &%s);"
                        % (member(lv, "val"), arg, member(lv, "len"))]
            return ["%s = xdrtest_string(r, a, %s, &%s);"
                    % (member(lv, "val"), arg, member(lv, "len"))]
        if f.kind == "plain":
            return ["xdrtest_sample_%s(r, a, %s);" % (f.ts().name, addr(lv))]
        el = self.plain_of(f)
        if f.kind == "fixed":
            body = self.samp(el, "%s[i]" % lv)
            return ["r->depth++;",
                    "for (uint32_t i = 0; i < %s; i++) {" % s.cval(f.size)] + \
                ["    " + b for b in body] + ["}", "r->depth--;"]
        if f.kind == "var":
            ln, val = member(lv, "len"), member(lv, "val")
            mx = s.cval(f.size) if f.size is not None else "0"
            body = self.samp(el, "%s[i]" % val)
            return ["%s = xdrtest_count(r, %s);" % (ln, mx),
                    "%s = xdrtest_alloc(a, %s, sizeof(*%s));" % (val, ln, val),
                    "if (!%s)" % val,
                    "    %s = 0;" % ln,
                    "r->depth++;",
                    "for (uint32_t i = 0; i < %s; i++) {" % ln] + \
                ["    " + b for b in body] + ["}", "r->depth--;"]
        body = self.samp(el, "(*%s)" % lv)
        return ["%s = NULL;" % lv,
                "if (xdrtest_present(r)) {",
                "    %s = xdrtest_alloc(a, 1, sizeof(*%s));" % (lv, lv),
                "    if (%s) {" % lv,
                "        r->depth++;"] + \
            ["        " + b for b in body] + ["        r->depth--;", "    }", "}"]

    # -- per-type functions
    def sig_enc(self, d):
        return "bool xdr_encode_%s(struct xdr_enc *x, const %s *v)" % (d.name, d.name)

    def sig_dec(self, d):
        return "bool xdr_decode_%s(struct xdr_dec *x, %s *v)" % (d.name, d.name)

    def sig_samp(self, d):
        return ("void xdrtest_sample_%s(struct xdrtest_rng *r, struct xdr_arena *a, %s *v)"
                % (d.name, d.name))

    def enum_valid(self, d):
        vals = sorted(self.s.num(v) for (_, v, _) in d.members)
        lines = ["static bool xdr_valid_%s(int32_t v)" % d.name, "{"]
        if vals == list(range(vals[0], vals[0] + len(vals))):
            lo, hi = vals[0], vals[-1]
            lines.append("    return v >= %d && v <= %d;" % (lo, hi))
        else:
            lines.append("    switch (v) {")
            for (m, _, _) in d.members:
                lines.append("    case %s:" % m)
            lines += ["        return true;", "    default:", "        return false;", "    }"]
        lines.append("}")
        return lines

    def union_switch(self, d, fn):
        s = self.s
        disc = "v->%s" % d.disc.name
        sw = "(int)%s" % disc if d.disc_kind == "bool" else disc
        out = ["switch (%s) {" % sw]
        for (labels, arm) in d.arms:
            for lab in labels:
                out.append("case %s:" % s.cval(lab))
            out += ["    " + b for b in fn(arm, "v->%s" % arm.name)]
            out.append("    break;")
        out.append("default:")
        if d.has_default:
            out += ["    " + b for b in fn(d.default, "v->%s" % d.default.name)]
            out.append("    break;")
        else:
            out.append("    return false;")
        out.append("}")
        return out

    def func_enc(self, d):
        s = self.s
        body = []
        if d.what == "enum":
            body = fail_if("!xdr_valid_%s((int32_t)*v)" % d.name) + \
                ["return xdr_enc_i32(x, (int32_t)*v);"]
            return self.func(self.sig_enc(d), body)
        if d.what == "typedef":
            body = self.enc(d.decl, "(*v)")
        elif d.what == "struct" and d.link is not None:
            t = d.name
            body = ["for (const %s *n = v; n; n = n->%s) {" % (t, d.link.name)]
            for f in d.fields[:-1]:
                body += ["    " + b for b in self.enc(f, "n->%s" % f.name)]
            body += ["    " + b for b in fail_if("!xdr_enc_bool(x, n->%s != NULL)"
                                                 % d.link.name)]
            body.append("}")
        elif d.what == "struct":
            for f in d.fields:
                body += self.enc(f, "v->%s" % f.name)
        else:
            body = self.enc(d.disc, "v->%s" % d.disc.name)
            body += self.union_switch(d, self.enc)
        body.append("return true;")
        return self.func(self.sig_enc(d), body)

    def func_dec(self, d):
        body = []
        if d.what == "enum":
            body = ["int32_t i;"] + fail_if("!xdr_dec_i32(x, &i) || !xdr_valid_%s(i)" % d.name) + \
                ["*v = (%s)i;" % d.name, "return true;"]
            return self.func(self.sig_dec(d), body)
        if d.what == "typedef":
            body = self.dec(d.decl, "(*v)")
        elif d.what == "struct" and d.link is not None:
            t, ln = d.name, d.link.name
            body = ["/* a list: one node after the other, no recursion */",
                    "for (%s *n = v;; n = n->%s) {" % (t, ln)]
            for f in d.fields[:-1]:
                body += ["    " + b for b in self.dec(f, "n->%s" % f.name)]
            body += ["    bool more;",
                     "    if (!xdr_dec_bool(x, &more))",
                     "        return false;",
                     "    n->%s = NULL;" % ln,
                     "    if (!more)",
                     "        return true;",
                     "    n->%s = xdr_arena_alloc(x->arena, 1, sizeof(*n->%s));" % (ln, ln),
                     "    if (!n->%s)" % ln,
                     "        return false;",
                     "}"]
            return self.func(self.sig_dec(d), body)
        elif d.what == "struct":
            for f in d.fields:
                body += self.dec(f, "v->%s" % f.name)
        else:
            body = self.dec(d.disc, "v->%s" % d.disc.name)
            body += self.union_switch(d, self.dec)
        body.append("return true;")
        return self.func(self.sig_dec(d), body)

    def func_samp(self, d):
        s = self.s
        body = []
        if d.what == "enum":
            names = [m for (m, _, _) in d.members]
            body = ["static const %s vals[] = { %s };" % (d.name, ", ".join(names)),
                    "*v = vals[xdrtest_below(r, %d)];" % len(names)]
        elif d.what == "typedef":
            body = self.samp(d.decl, "(*v)")
        elif d.what == "struct" and d.link is not None:
            t, ln = d.name, d.link.name
            body = ["uint32_t more = xdrtest_count(r, 0);",
                    "for (%s *n = v;; n = n->%s) {" % (t, ln)]
            for f in d.fields[:-1]:
                body += ["    " + b for b in self.samp(f, "n->%s" % f.name)]
            body += ["    n->%s = NULL;" % ln,
                     "    if (!more--)",
                     "        break;",
                     "    n->%s = xdrtest_alloc(a, 1, sizeof(*n->%s));" % (ln, ln),
                     "    if (!n->%s)" % ln,
                     "        break;",
                     "}"]
        elif d.what == "struct":
            for f in d.fields:
                body += self.samp(f, "v->%s" % f.name)
        else:
            body = self.samp_union(d)
        return self.func(self.sig_samp(d), body)

    def samp_union(self, d):
        s = self.s
        disc = "v->%s" % d.disc.name
        bk = d.disc_kind
        choices = []  # (assignment lines, arm decl)
        used = set()
        for (labels, arm) in d.arms:
            for lab in labels:
                used.add(s.num(lab))
                choices.append((["%s = %s;" % (disc, s.cval(lab))], arm))
        if d.has_default:
            if isinstance(bk, EnumDef):
                others = [m for (m, v, _) in bk.members if s.num(v) not in used]
                if others:
                    choices.append((["static const %s others[] = { %s };"
                                     % (bk.name, ", ".join(others)),
                                     "%s = others[xdrtest_below(r, %d)];"
                                     % (disc, len(others))], d.default))
            elif bk == "bool":
                others = [n for n in (0, 1) if n not in used]
                if others:
                    choices.append((["%s = %d;" % (disc, others[0])], d.default))
            else:
                labs = ", ".join("%du" % (n & UINT32_MAX) for n in sorted(used))
                cast = "(int32_t)" if bk == "int" else ""
                choices.append((["static const uint32_t labels[] = { %s };" % labs,
                                 "%s = %sxdrtest_u32_except(r, labels, %d);"
                                 % (disc, cast, len(used))], d.default))
        out = ["switch (xdrtest_below(r, %d)) {" % len(choices)]
        for i, (assign, arm) in enumerate(choices):
            out.append("default:" if i == len(choices) - 1 else "case %d:" % i)
            out.append("    {")
            out += ["        " + a for a in assign]
            out += ["        " + b for b in self.samp(arm, "v->%s" % arm.name)]
            out += ["        break;", "    }"]
        out.append("}")
        return out

    def func(self, sig, body):
        out = [sig, "{"]
        for b in body:
            out.append(("    " + b) if b else "")
        out.append("}")
        return out

    # -- files
    def header(self, src_name):
        s = self.s
        guard = "PEERNFS_XDR_%s_XDR_H" % re.sub(r"[^A-Za-z0-9]", "_", self.base).upper()
        out = ["/* Generated by tools/xdrgen.py from %s. Do not edit. */" % src_name,
               "/*",
               " * For every type T: bool xdr_encode_T(struct xdr_enc *, const T *) and",
               " * bool xdr_decode_T(struct xdr_dec *, T *), true on success. Decoded opaque",
               " * data and strings point into the decode buffer; arrays and optional data",
               " * are allocated from the decoder's arena. Declared maxima, enum values, bools",
               " * and union discriminants are checked when encoding and when decoding.",
               " * VERSION_PROCEDURES(X) lists X(procedure, number, argument, result).",
               " */",
               "#ifndef %s" % guard, "#define %s" % guard, "",
               '#include "xdr/xdr.h"', "",
               "#ifdef __cplusplus", 'extern "C" {', "#endif", ""]
        consts = [d for d in s.defs if d.what == "const"]
        if consts:
            for d in consts:
                out.append("#define %s %s" % (d.name, s.cval(d.value)))
            out.append("")
        for d in s.defs:
            if d.what != "program":
                continue
            out.append("#define %s %s" % (d.name, s.cval(d.value)))
            emitted = set()
            for ver in d.versions:
                out.append("#define %s %s" % (ver.name, s.cval(ver.value)))
                for pr in ver.procs:
                    if pr.name not in emitted:
                        emitted.add(pr.name)
                        out.append("#define %s %s" % (pr.name, s.cval(pr.value)))
            for ver in d.versions:
                out.append("/* %s version %s: X(procedure, number, argument type, result type) */"
                           % (d.name, ver.name))
                out.append("#define %s_PROCEDURES(X) \\" % ver.name)
                rows = []
                for pr in ver.procs:
                    if len(pr.args) != 1:
                        raise XdrError(s.path, pr.line, "procedure %s: more than one argument "
                                       "is not supported" % pr.name)
                    rows.append("    X(%s, %s, %s, %s)" % (pr.name, s.cval(pr.value),
                                                          pr.args[0], pr.ret))
                out += [r + " \\" for r in rows[:-1]] + rows[-1:]
            out.append("")
        fwd = [d for d in s.order if d.what in ("struct", "union")]
        for d in fwd:
            out.append("typedef struct %s %s;" % (d.name, d.name))
        if fwd:
            out.append("")
        for d in s.order:
            out += self.c_typedef(d)
            out.append("")
        for d in s.order:
            out.append(self.sig_enc(d) + ";")
            out.append(self.sig_dec(d) + ";")
        out += ["", "#ifdef __cplusplus", "}", "#endif", "", "#endif", ""]
        return "\n".join(out)

    def c_typedef(self, d):
        s = self.s
        if d.what == "enum":
            out = ["enum %s {" % d.name]
            for (m, v, _) in d.members:
                out.append("    %s = %s," % (m, s.cval(v)))
            return out + ["};", "typedef enum %s %s;" % (d.name, d.name)]
        if d.what == "typedef":
            return ["typedef %s;" % s.c_decl(d.decl, d.name)]
        if d.what == "struct":
            out = ["struct %s {" % d.name]
            for f in d.fields:
                if f.kind != "void":  # a zero-size array: nothing on the wire
                    out.append("    %s;" % s.c_decl(f, f.name))
            return out + ["};"]
        out = ["struct %s {" % d.name, "    %s;" % s.c_decl(d.disc, d.disc.name)]
        arms, seen = [], set()
        for a in [a for (_, a) in d.arms] + ([d.default] if d.has_default else []):
            if a.kind != "void" and a.name not in seen:
                seen.add(a.name)
                arms.append(a)
        if arms:
            out.append("    union {")
            for a in arms:
                out.append("        %s;" % s.c_decl(a, a.name))
            out.append("    };")
        return out + ["};"]

    def source(self, src_name):
        s = self.s
        out = ["/* Generated by tools/xdrgen.py from %s. Do not edit. */" % src_name,
               '#include "%s"' % self.header_include, ""]
        for d in s.order:
            if d.what == "enum":
                out += self.enum_valid(d)
                out.append("")
        for d in s.order:
            out += self.func_enc(d)
            out.append("")
            out += self.func_dec(d)
            out.append("")
        return "\n".join(out)

    def test_table(self, src_name):
        s = self.s
        ident = re.sub(r"[^A-Za-z0-9_]", "_", self.base)
        out = ["/* Generated by tools/xdrgen.py from %s. Do not edit. */" % src_name,
               "/* Random valid samples of every type and the table the generic tests use. */",
               '#include "%s"' % self.header_include, '#include "xdrtest.h"', ""]
        for d in s.order:
            out.append(self.sig_samp(d) + ";")
        out.append("")
        for d in s.order:
            out += self.func_samp(d)
            out.append("")
        for d in s.order:
            n = d.name
            out.append("static void xs_%s(struct xdrtest_rng *r, struct xdr_arena *a, void *v) "
                       "{ xdrtest_sample_%s(r, a, v); }" % (n, n))
            out.append("static bool xe_%s(struct xdr_enc *x, const void *v) "
                       "{ return xdr_encode_%s(x, v); }" % (n, n))
            out.append("static bool xd_%s(struct xdr_dec *x, void *v) "
                       "{ return xdr_decode_%s(x, v); }" % (n, n))
        out.append("")
        out.append("const struct xdrtest_type xdrtest_types_%s[] = {" % ident)
        for d in s.order:
            n = d.name
            out.append('    { "%s", sizeof(%s), %d, xs_%s, xe_%s, xd_%s },'
                       % (n, n, s.min_size_type(n), n, n, n))
        out.append("    { NULL, 0, 0, NULL, NULL, NULL },")
        out.append("};")
        out.append("")
        return "\n".join(out)


def write_file(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def main(argv=None):
    ap = argparse.ArgumentParser(description="Generate C XDR codecs from an .x file")
    ap.add_argument("input")
    ap.add_argument("--header", required=True)
    ap.add_argument("--source", required=True)
    ap.add_argument("--test-table")
    ap.add_argument("--include-prefix", default="xdr/",
                    help="how the source includes the header (default: xdr/)")
    args = ap.parse_args(argv)
    try:
        with open(args.input, "r", encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        print("xdrgen: %s" % e, file=sys.stderr)
        return 1
    base = os.path.splitext(os.path.basename(args.input))[0]
    src_name = "proto/" + os.path.basename(args.input)
    try:
        defs = Parser(lex(text, args.input), args.input).parse()
        spec = Spec(defs, args.input)
        gen = Gen(spec, base, args.include_prefix + os.path.basename(args.header))
        hdr = gen.header(src_name)
        src = gen.source(src_name)
        tst = gen.test_table(src_name) if args.test_table else None
    except XdrError as e:
        print(str(e), file=sys.stderr)
        return 1
    write_file(args.header, hdr)
    write_file(args.source, src)
    if tst is not None:
        write_file(args.test_table, tst)
    return 0


if __name__ == "__main__":
    sys.exit(main())
