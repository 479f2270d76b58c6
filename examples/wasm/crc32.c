/* CRC-32 (IEEE 802.3, the one zlib and PNG use) of the input bytes.
 *
 * Reads the whole input with getchar and prints the checksum as 8 lowercase hex digits and a
 * newline. The lookup table is built at start-up. Returns 0.
 */
int putchar(int);
int getchar(void);

static unsigned table[256];

static void build_table(void) {
    for (unsigned n = 0; n < 256; n++) {
        unsigned c = n;
        for (int k = 0; k < 8; k++) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        table[n] = c;
    }
}

int main(void) {
    build_table();
    unsigned crc = 0xFFFFFFFFu;
    int c;
    while ((c = getchar()) >= 0) crc = table[(crc ^ (unsigned)c) & 0xFF] ^ (crc >> 8);
    crc ^= 0xFFFFFFFFu;
    for (int shift = 28; shift >= 0; shift -= 4) putchar("0123456789abcdef"[(crc >> shift) & 15]);
    putchar('\n');
    return 0;
}
