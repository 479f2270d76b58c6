/* Hungarian algorithm (Kuhn-Munkres with row/column potentials, O(n^3)) on a fixed 10x10
 * cost matrix: finds the assignment of rows to distinct columns with the smallest total cost.
 *
 * Prints one line per row, "row R -> column C (cost X)", then "total T". Returns 0.
 */
int putchar(int);

#define N 10
#define INF 0x3FFFFFFF

static const int COST[N][N] = {
    {31, 39, 14, 93, 51, 62, 20, 12,  9,  3},
    {52, 71, 38, 98,  8, 29, 67, 69, 47, 36},
    {23, 14, 34, 28,  4, 83, 34, 35, 25, 22},
    {40, 38, 81, 94, 48, 12, 78, 44, 86, 50},
    {65, 32, 23, 32, 61, 36, 12, 71, 39,  1},
    {38, 74, 91, 40, 98, 66, 25, 53, 55, 77},
    {37, 56, 58, 21, 30, 40, 34,  6, 11,  6},
    {60, 81, 36, 67, 69, 83, 61, 90, 44, 19},
    {87, 26,  9, 53, 26, 82, 81, 57, 36, 24},
    {46, 56, 96, 76, 42, 82, 72, 26, 42, 13},
};

static void print_int(int v) {
    char buf[12];
    int n = 0;
    unsigned u = v < 0 ? 0u - (unsigned)v : (unsigned)v;
    if (v < 0) putchar('-');
    do {
        buf[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    while (n) putchar(buf[--n]);
}

static void print_str(const char *s) {
    while (*s) putchar(*s++);
}

int main(void) {
    /* 1-based arrays as in the classic formulation; column 0 is a virtual start column. */
    int u[N + 1] = {0}, v[N + 1] = {0}, match[N + 1] = {0}, way[N + 1] = {0};
    for (int row = 1; row <= N; row++) {
        int minv[N + 1];
        unsigned char used[N + 1];
        for (int j = 0; j <= N; j++) {
            minv[j] = INF;
            used[j] = 0;
        }
        match[0] = row;
        int j0 = 0;
        do { /* grow an alternating tree until it reaches a free column */
            used[j0] = 1;
            int i0 = match[j0], delta = INF, j1 = 0;
            for (int j = 1; j <= N; j++) {
                if (used[j]) continue;
                int cur = COST[i0 - 1][j - 1] - u[i0] - v[j];
                if (cur < minv[j]) {
                    minv[j] = cur;
                    way[j] = j0;
                }
                if (minv[j] < delta) {
                    delta = minv[j];
                    j1 = j;
                }
            }
            for (int j = 0; j <= N; j++) {
                if (used[j]) {
                    u[match[j]] += delta;
                    v[j] -= delta;
                } else {
                    minv[j] -= delta;
                }
            }
            j0 = j1;
        } while (match[j0] != 0);
        do { /* flip the augmenting path */
            int j1 = way[j0];
            match[j0] = match[j1];
            j0 = j1;
        } while (j0);
    }

    int col_of_row[N];
    for (int j = 1; j <= N; j++) col_of_row[match[j] - 1] = j - 1;
    int total = 0;
    for (int i = 0; i < N; i++) {
        int c = col_of_row[i];
        total += COST[i][c];
        print_str("row ");
        print_int(i);
        print_str(" -> column ");
        print_int(c);
        print_str(" (cost ");
        print_int(COST[i][c]);
        print_str(")\n");
    }
    print_str("total ");
    print_int(total);
    putchar('\n');
    return 0;
}
