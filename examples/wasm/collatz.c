/* Collatz (3n + 1) trajectories, in 64-bit arithmetic.
 *
 * Input: a start value n >= 1 in decimal (default 27). Prints n's trajectory down to 1, then
 * its number of steps and its highest value, then the start below 100 with the longest
 * trajectory. Returns 0, or 1 when the input is not a positive number.
 */
int putchar(int);
int getchar(void);

typedef unsigned long long u64;

static void print_u64(u64 v) {
    char buf[20];
    int n = 0;
    do {
        buf[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n) putchar(buf[--n]);
}

static void print_str(const char *s) {
    while (*s) putchar(*s++);
}

static u64 next(u64 n) { return (n & 1) ? 3 * n + 1 : n >> 1; }

static int steps_to_one(u64 n) {
    int steps = 0;
    while (n != 1) {
        n = next(n);
        steps++;
    }
    return steps;
}

static int read_u64(u64 *out) {
    int c, any = 0;
    u64 v = 0;
    while ((c = getchar()) >= 0) {
        if (c >= '0' && c <= '9') {
            v = v * 10 + (u64)(c - '0');
            any = 1;
        } else if (any) {
            break;
        }
    }
    *out = v;
    return any;
}

int main(void) {
    u64 n;
    if (!read_u64(&n)) n = 27;
    if (n == 0) return 1;

    u64 peak = n;
    int steps = 0;
    print_u64(n);
    for (u64 v = n; v != 1; steps++) {
        v = next(v);
        if (v > peak) peak = v;
        putchar(' ');
        print_u64(v);
    }
    putchar('\n');
    print_str("steps ");
    print_u64((u64)steps);
    print_str(" peak ");
    print_u64(peak);
    putchar('\n');

    int best_start = 1, best_steps = 0;
    for (int s = 1; s < 100; s++) {
        int k = steps_to_one((u64)s);
        if (k > best_steps) {
            best_steps = k;
            best_start = s;
        }
    }
    print_str("longest below 100: ");
    print_u64((u64)best_start);
    print_str(" (");
    print_u64((u64)best_steps);
    print_str(" steps)\n");
    return 0;
}
