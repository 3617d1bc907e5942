/*
 * Hyperscan peer for the detection bench (BENCHMARKS.md). Not part of any
 * shieldx build: benches/hyperscan/run.sh compiles it against Debian's
 * libhyperscan-dev, and `cargo bench --bench detect` runs it on the same rule
 * shapes and events (written to files) when SHIELDX_HYPERSCAN names it.
 *
 * usage: hs_bench PATTERNS EVENTS SECONDS
 *   PATTERNS: one per line, "L<TAB>bytes" (caseless literal) or
 *             "R<TAB>regex" (PCRE syntax, single-match per event)
 *   EVENTS:   repeated [u32 little-endian length][bytes]
 * prints: "events_per_second <f> matches <n>"
 */
#include <hs/hs.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int on_match(unsigned int id, unsigned long long from, unsigned long long to,
                    unsigned int flags, void *ctx) {
    (void)id; (void)from; (void)to; (void)flags;
    (*(unsigned long long *)ctx)++;
    return 0;
}

static char *read_all(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) { perror(path); exit(2); }
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc(*len + 1);
    if (fread(buf, 1, *len, f) != *len) { perror(path); exit(2); }
    buf[*len] = 0;
    fclose(f);
    return buf;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    if (argc != 4) { fprintf(stderr, "usage: hs_bench PATTERNS EVENTS SECONDS\n"); return 2; }
    size_t plen, elen;
    char *ptext = read_all(argv[1], &plen);
    char *etext = read_all(argv[2], &elen);
    double seconds = atof(argv[3]);

    size_t cap = 1024, n = 0;
    const char **exprs = malloc(cap * sizeof *exprs);
    unsigned *flags = malloc(cap * sizeof *flags), *ids = malloc(cap * sizeof *ids);
    size_t *lens = malloc(cap * sizeof *lens);
    int literal_only = 1;
    for (char *line = strtok(ptext, "\n"); line; line = strtok(NULL, "\n")) {
        if (n == cap) {
            cap *= 2;
            exprs = realloc(exprs, cap * sizeof *exprs);
            flags = realloc(flags, cap * sizeof *flags);
            ids = realloc(ids, cap * sizeof *ids);
            lens = realloc(lens, cap * sizeof *lens);
        }
        exprs[n] = line + 2;
        lens[n] = strlen(line + 2);
        flags[n] = HS_FLAG_SINGLEMATCH | (line[0] == 'L' ? HS_FLAG_CASELESS : 0);
        if (line[0] != 'L') literal_only = 0;
        ids[n] = (unsigned)n;
        n++;
    }
    hs_database_t *db = NULL;
    hs_compile_error_t *err = NULL;
    hs_error_t rc;
    if (literal_only) {
        rc = hs_compile_lit_multi(exprs, flags, ids, lens, (unsigned)n, HS_MODE_BLOCK, NULL, &db, &err);
    } else {
        /* Mixed sets: literals become escaped regexes. */
        for (size_t i = 0; i < n; i++) {
            if (flags[i] & HS_FLAG_CASELESS) {
                char *esc = malloc(lens[i] * 4 + 1), *o = esc;
                for (size_t j = 0; j < lens[i]; j++) o += sprintf(o, "\\x%02x", (unsigned char)exprs[i][j]);
                exprs[i] = esc;
            }
        }
        rc = hs_compile_multi(exprs, flags, ids, (unsigned)n, HS_MODE_BLOCK, NULL, &db, &err);
    }
    if (rc != HS_SUCCESS) { fprintf(stderr, "compile: %s\n", err ? err->message : "?"); return 1; }
    hs_scratch_t *scratch = NULL;
    hs_alloc_scratch(db, &scratch);

    size_t count = 0;
    for (size_t off = 0; off + 4 <= elen; count++) {
        uint32_t l; memcpy(&l, etext + off, 4); off += 4 + l;
    }
    unsigned long long matches = 0, scanned = 0;
    double start = now(), elapsed = 0;
    while (elapsed < seconds) {
        for (size_t off = 0; off + 4 <= elen;) {
            uint32_t l; memcpy(&l, etext + off, 4);
            hs_scan(db, etext + off + 4, l, 0, scratch, on_match, &matches);
            off += 4 + l;
        }
        scanned += count;
        elapsed = now() - start;
    }
    printf("events_per_second %.0f matches %llu\n", scanned / elapsed, matches);
    return 0;
}
