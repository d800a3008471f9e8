/* client/: nfs:// URL parsing — IPv4, [IPv6], ports, arguments, missing parts, bad input. */
#include <errno.h>
#include <string.h>

#include "check.h"
#include "client/nfs_client.h"

static void good(const char *url, const char *host, unsigned port, const char *path)
{
    struct nfs_url u;
    char err[256] = "";
    int st = nfs_url_parse(url, &u, err, sizeof(err));
    CHECK_EQ(st, 0);
    if (st) {
        fprintf(stderr, "  %s: %s\n", url, err);
        return;
    }
    CHECK(strcmp(u.host, host) == 0);
    CHECK_EQ(u.port, port);
    CHECK(strcmp(u.path, path) == 0);
    if (strcmp(u.path, path))
        fprintf(stderr, "  %s: path %s, expected %s\n", url, u.path, path);
    nfs_url_free(&u);
}

static void bad(const char *url, const char *msg_part)
{
    struct nfs_url u;
    char err[256] = "";
    CHECK_EQ(nfs_url_parse(url, &u, err, sizeof(err)), -EINVAL);
    CHECK(err[0] != 0);
    if (msg_part && !strstr(err, msg_part))
        fprintf(stderr, "  %s: message '%s' lacks '%s'\n", url, err, msg_part), check_failures++;
}

int main(void)
{
    good("nfs://127.0.0.1/export", "127.0.0.1", 0, "/export");
    good("nfs://server.example.com/export/dir/file", "server.example.com", 0, "/export/dir/file");
    good("NFS://h:2049/e/", "h", 2049, "/e");
    good("nfs://h/e//a///b", "h", 0, "/e/a/b");
    good("nfs://h/", "h", 0, "/");
    good("nfs://[::1]/export", "::1", 0, "/export");
    good("nfs://[fe80::1%25eth0]:111/x", "fe80::1%eth0", 111, "/x");
    good("nfs://[2001:db8::7]:65535/x/y?vers=3", "2001:db8::7", 65535, "/x/y");
    good("nfs://h/a%20b/c%2fd", "h", 0, "/a b/c/d");

    /* arguments */
    struct nfs_url u;
    char err[256];
    CHECK_EQ(nfs_url_parse("nfs://h/e?vers=4.1&port=2050&mountport=20048&timeo=5&window=16"
                           "&uid=1000&gid=100&export=/e",
                           &u, err, sizeof(err)), 0);
    CHECK_EQ(u.vers_major, 4);
    CHECK_EQ(u.vers_minor, 1);
    CHECK_EQ(u.port, 2050);
    CHECK_EQ(u.mountport, 20048);
    CHECK_EQ(u.timeo_s, 5);
    CHECK_EQ(u.window, 16);
    CHECK_EQ(u.uid, 1000);
    CHECK_EQ(u.gid, 100);
    CHECK(u.export_path && strcmp(u.export_path, "/e") == 0);
    nfs_url_free(&u);
    CHECK_EQ(nfs_url_parse("nfs://h/e", &u, err, sizeof(err)), 0);
    CHECK_EQ(u.vers_major, 3); /* defaults */
    CHECK_EQ(u.port, 0);
    CHECK_EQ(u.mountport, 0);
    CHECK_EQ(u.window, 4);
    CHECK_EQ(u.uid, -1);
    CHECK(u.export_path == NULL);
    nfs_url_free(&u);
    CHECK_EQ(nfs_url_parse("nfs://h/e?vers=4.2&&vers=3", &u, err, sizeof(err)), 0);
    CHECK_EQ(u.vers_major, 3); /* the last one wins, empty pairs are skipped */
    nfs_url_free(&u);

    /* missing parts and bad input */
    bad("http://h/e", "nfs://");
    bad("nfs:/h/e", "nfs://");
    bad("", NULL);
    bad("nfs://", "host");
    bad("nfs:///export", "host");
    bad("nfs://host", "export path");
    bad("nfs://host:2049", "export path");
    bad("nfs://host?vers=3", "export path");
    bad("nfs://h:/e", "port");
    bad("nfs://h:0/e", "port");
    bad("nfs://h:65536/e", "port");
    bad("nfs://h:20x9/e", "port");
    bad("nfs://h:99999999999/e", "port");
    bad("nfs://[::1/e", "IPv6");
    bad("nfs://[]/e", "IPv6");
    bad("nfs://[::1]x/e", "junk");
    bad("nfs://[zz::1]/e", "IPv6");
    bad("nfs://ho st/e", "host");
    bad("nfs://h@x/e", "host");
    bad("nfs://h/e?vers=5", "vers");
    bad("nfs://h/e?vers=4.3", "vers");
    bad("nfs://h/e?vers=", "vers");
    bad("nfs://h/e?port=0", "port");
    bad("nfs://h/e?mountport=70000", "mountport");
    bad("nfs://h/e?window=0", "window");
    bad("nfs://h/e?window=65", "window");
    bad("nfs://h/e?timeo=-1", "timeo");
    bad("nfs://h/e?bogus=1", "unknown");
    bad("nfs://h/e?port", "no value");
    bad("nfs://h/e?export=relative", "export");
    bad("nfs://h/e%zz", "escape");
    bad("nfs://h/e%2", "escape");
    bad("nfs://h/e%00x", "escape");

    CHECK(nfs_url_is_nfs("nfs://x/y"));
    CHECK(!nfs_url_is_nfs("/local/path"));
    CHECK(!nfs_url_is_nfs(NULL));
    CHECK(strstr(nfs_client_strerror(2), "NOENT") != NULL);
    CHECK(strstr(nfs_client_strerror(-EBADMSG), "malformed") != NULL);
    CHECK(nfs_client_strerror(123456) != NULL);
    return check_report("test_client_url");
}
