/*
 * shout: an ordinary C program for WASI, to run unmodified under wasmpool.
 *
 * Upper-cases its arguments, or stdin when it has none; an argument @PATH
 * stands for the contents of the file PATH. $SHOUT_PREFIX, if set, comes
 * first. Exits with 3 when there is nothing to shout, and with 4 when a
 * file cannot be read.
 *
 * Build: python3 -m ziglang cc --target=wasm32-wasi -O2 -s shout.c -o shout.wasm
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static size_t shout_stream(FILE *in) {
    size_t count = 0;
    int c;
    while ((c = getc(in)) != EOF) {
        putchar(toupper(c));
        count++;
    }
    return count;
}

int main(int argc, char **argv) {
    size_t count = 0;
    const char *prefix = getenv("SHOUT_PREFIX");
    if (prefix != NULL) {
        printf("%s", prefix);
    }
    if (argc == 1) {
        count = shout_stream(stdin);
    }
    for (int i = 1; i < argc; i++) {
        if (argv[i][0] == '@') {
            FILE *file = fopen(argv[i] + 1, "r");
            if (file == NULL) {
                fprintf(stderr, "shout: cannot read %s\n", argv[i] + 1);
                return 4;
            }
            count += shout_stream(file);
            fclose(file);
        } else {
            for (const char *p = argv[i]; *p != '\0'; p++) {
                putchar(toupper((unsigned char)*p));
                count++;
            }
        }
        putchar(i + 1 < argc ? ' ' : '\n');
    }
    if (count == 0) {
        fprintf(stderr, "shout: nothing to shout\n");
        return 3;
    }
    return 0;
}
