/* Sudoku solver: bitmask candidate sets, naked and hidden singles, most-constrained-cell search.
 *
 * Reads 81 cells (digits 1-9; '.' or '0' for a blank; other characters are ignored) from the
 * input; with no input it solves Arto Inkala's "world's hardest sudoku". Prints the solved grid,
 * one row per line. Returns 0 when solved, 1 when the puzzle has no solution, 2 when the input
 * holds fewer than 81 cells.
 */
int putchar(int);
int getchar(void);

static const char DEFAULT_PUZZLE[] =
    "8........"
    "..36....."
    ".7..9.2.."
    ".5...7..."
    "....457.."
    "...1...3."
    "..1....68"
    "..85...1."
    ".9....4..";

/* Units: 0-8 rows, 9-17 columns, 18-26 boxes. free[u] has bit d-1 set while digit d is still
 * missing from unit u; a blank cell's candidates are the AND of its three units' free masks. */
static unsigned free_mask[27];
static unsigned char unit_of[81][3];
static unsigned char unit_cells[27][9];
static unsigned char grid[81];
static unsigned char empty[81]; /* blank cells; solve() fills empty[depth..n_empty) */
static int n_empty;
static unsigned cand[81];       /* scratch for the hidden-single pass */

static unsigned candidates(int cell) {
    const unsigned char *u = unit_of[cell];
    return free_mask[u[0]] & free_mask[u[1]] & free_mask[u[2]];
}

static void toggle(int cell, int digit) { /* place digit, or undo placing it */
    unsigned bit = 1u << (digit - 1);
    const unsigned char *u = unit_of[cell];
    free_mask[u[0]] ^= bit;
    free_mask[u[1]] ^= bit;
    free_mask[u[2]] ^= bit;
}

/* Looks for a digit that fits in exactly one cell of some unit. Returns -1 when some unit has a
 * missing digit that fits nowhere (dead end), cell * 16 + digit for a hidden single, 0 if none. */
static int hidden_single(int depth) {
    for (int i = 0; i < 81; i++) cand[i] = 0;
    for (int i = depth; i < n_empty; i++) cand[empty[i]] = candidates(empty[i]);
    for (int u = 0; u < 27; u++) {
        const unsigned char *cells = unit_cells[u];
        unsigned once = 0, twice = 0;
        for (int k = 0; k < 9; k++) {
            unsigned m = cand[cells[k]];
            twice |= once & m;
            once |= m;
        }
        if (free_mask[u] & ~once) return -1;
        unsigned single = once & ~twice;
        if (single) {
            unsigned bit = single & -single;
            for (int k = 0; k < 9; k++)
                if (cand[cells[k]] & bit) return cells[k] * 16 + __builtin_ctz(bit) + 1;
        }
    }
    return 0;
}

static void move_to(int depth, int cell) { /* swap `cell` into empty[depth] */
    for (int i = depth; i < n_empty; i++) {
        if (empty[i] == cell) {
            empty[i] = empty[depth];
            empty[depth] = (unsigned char)cell;
            return;
        }
    }
}

/* Fill blanks empty[depth..n_empty). Forced cells (naked or hidden singles) are placed in a loop;
 * a choice point recurses once per candidate. Returns 1 when solved; on failure every placement
 * made here has been undone. */
static int solve(int depth) {
    int start = depth;
    for (;;) {
        if (depth == n_empty) return 1;
        int best = depth, best_count = 10;
        unsigned best_cand = 0;
        for (int i = depth; i < n_empty; i++) {
            unsigned c = candidates(empty[i]);
            int count = __builtin_popcount(c);
            if (count < best_count) {
                best_count = count;
                best = i;
                best_cand = c;
                if (count <= 1) break;
            }
        }
        if (best_count == 0) break;
        if (best_count >= 2) {
            int h = hidden_single(depth);
            if (h < 0) break;
            if (h > 0) {
                int cell = h >> 4, digit = h & 15;
                move_to(depth, cell);
                grid[cell] = (unsigned char)digit;
                toggle(cell, digit);
                depth++;
                continue;
            }
        }
        unsigned char cell = empty[best];
        empty[best] = empty[depth];
        empty[depth] = cell;
        if (best_count == 1) {
            int digit = __builtin_ctz(best_cand) + 1;
            grid[cell] = (unsigned char)digit;
            toggle(cell, digit);
            depth++;
            continue;
        }
        for (unsigned c = best_cand; c; c &= c - 1) {
            int digit = __builtin_ctz(c) + 1;
            grid[cell] = (unsigned char)digit;
            toggle(cell, digit);
            if (solve(depth + 1)) return 1;
            toggle(cell, digit);
        }
        grid[cell] = 0;
        break;
    }
    while (depth > start) { /* undo this level's forced placements */
        int cell = empty[--depth];
        toggle(cell, grid[cell]);
        grid[cell] = 0;
    }
    return 0;
}

static int read_puzzle(void) {
    int n = 0, c;
    while (n < 81 && (c = getchar()) >= 0) {
        if (c >= '1' && c <= '9') grid[n++] = (unsigned char)(c - '0');
        else if (c == '.' || c == '0') grid[n++] = 0;
    }
    if (n == 0) {
        for (int i = 0; i < 81; i++) {
            char d = DEFAULT_PUZZLE[i];
            grid[i] = (unsigned char)(d == '.' ? 0 : d - '0');
        }
        return 1;
    }
    return n == 81;
}

int main(void) {
    if (!read_puzzle()) return 2;
    unsigned char fill[27] = {0};
    for (int u = 0; u < 27; u++) free_mask[u] = 0x1FF;
    for (int cell = 0; cell < 81; cell++) {
        int r = cell / 9, c = cell % 9, b = (r / 3) * 3 + c / 3;
        unit_of[cell][0] = (unsigned char)r;
        unit_of[cell][1] = (unsigned char)(9 + c);
        unit_of[cell][2] = (unsigned char)(18 + b);
        for (int k = 0; k < 3; k++) {
            int u = unit_of[cell][k];
            unit_cells[u][fill[u]++] = (unsigned char)cell;
        }
    }
    for (int cell = 0; cell < 81; cell++) {
        int d = grid[cell];
        if (d == 0) {
            empty[n_empty++] = (unsigned char)cell;
        } else {
            if (!(candidates(cell) & (1u << (d - 1)))) return 1; /* clashes with a given */
            toggle(cell, d);
        }
    }
    if (!solve(0)) return 1;
    for (int r = 0; r < 9; r++) {
        for (int c = 0; c < 9; c++) putchar('0' + grid[r * 9 + c]);
        putchar('\n');
    }
    return 0;
}
