/* Adds two big non-negative decimal numbers digit by digit, like on paper.
 *
 * Input: two numbers separated by any non-digit characters (e.g. "123 + 456"); with no input it
 * adds two fixed 40-digit numbers. Prints the sum followed by a newline. Returns 0, or 1 when
 * the input does not hold two numbers, or 2 when a number has more than MAX_DIGITS digits.
 */
int putchar(int);
int getchar(void);

#define MAX_DIGITS 256

static const char DEFAULT_INPUT[] =
    "9876543210987654321098765432109876543210 + 1234567890123456789012345678901234567890";

static unsigned char a[MAX_DIGITS], b[MAX_DIGITS]; /* digits, least significant first */
static unsigned char sum[MAX_DIGITS + 1];
static int default_pos = -1; /* >= 0: reading DEFAULT_INPUT because the real input is empty */
static int pending = -2;     /* a character read ahead and put back (-2: none) */

static int next_char(void) {
    if (pending != -2) {
        int c = pending;
        pending = -2;
        return c;
    }
    if (default_pos >= 0) {
        char c = DEFAULT_INPUT[default_pos];
        if (c == 0) return -1;
        default_pos++;
        return c;
    }
    return getchar();
}

/* Reads the next run of digits into out[] (least significant first); returns its length, 0 at
 * end of input, or -1 if it is too long. */
static int read_number(unsigned char *out) {
    unsigned char tmp[MAX_DIGITS];
    int c, n = 0;
    do {
        c = next_char();
    } while (c >= 0 && (c < '0' || c > '9'));
    while (c >= '0' && c <= '9') {
        if (n == MAX_DIGITS) return -1;
        tmp[n++] = (unsigned char)(c - '0');
        c = next_char();
    }
    for (int i = 0; i < n; i++) out[i] = tmp[n - 1 - i];
    return n;
}

int main(void) {
    pending = getchar();
    if (pending < 0) {
        pending = -2;
        default_pos = 0;
    }
    int na = read_number(a);
    int nb = read_number(b);
    if (na < 0 || nb < 0) return 2;
    if (na == 0 || nb == 0) return 1;

    int n = na > nb ? na : nb, carry = 0;
    for (int i = 0; i < n; i++) {
        int s = (i < na ? a[i] : 0) + (i < nb ? b[i] : 0) + carry;
        carry = s >= 10;
        sum[i] = (unsigned char)(carry ? s - 10 : s);
    }
    if (carry) sum[n++] = 1;
    while (n > 1 && sum[n - 1] == 0) n--; /* "007 + 0" prints 7 */
    for (int i = n - 1; i >= 0; i--) putchar('0' + sum[i]);
    putchar('\n');
    return 0;
}
