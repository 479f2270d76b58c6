/* Sieve of Eratosthenes.
 *
 * Input: a limit N in decimal (default 1000, at most 100000). Prints every prime below N
 * separated by spaces, then a line with their count. Returns 0, or 1 when N is too large.
 */
int putchar(int);
int getchar(void);

#define MAX_LIMIT 100000

static unsigned char composite[MAX_LIMIT];

static void print_uint(unsigned v) {
    char buf[10];
    int n = 0;
    do {
        buf[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n) putchar(buf[--n]);
}

int main(void) {
    unsigned limit = 0;
    int c, any = 0;
    while ((c = getchar()) >= 0) {
        if (c >= '0' && c <= '9') {
            if (limit > MAX_LIMIT) return 1;
            limit = limit * 10 + (unsigned)(c - '0');
            any = 1;
        } else if (any) {
            break;
        }
    }
    if (!any) limit = 1000;
    if (limit > MAX_LIMIT) return 1;

    for (unsigned p = 2; p * p < limit; p++)
        if (!composite[p])
            for (unsigned m = p * p; m < limit; m += p) composite[m] = 1;

    unsigned count = 0;
    for (unsigned p = 2; p < limit; p++) {
        if (composite[p]) continue;
        if (count) putchar(' ');
        print_uint(p);
        count++;
    }
    putchar('\n');
    print_uint(count);
    putchar('\n');
    return 0;
}
