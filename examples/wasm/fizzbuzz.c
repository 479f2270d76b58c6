/* FizzBuzz with counters instead of division, executed inside the transformer:
   '.' for plain numbers, F for multiples of 3, B of 5, Z of 15. */
int putchar(int);

__attribute__((noinline)) static int fizzbuzz(int n) {
    int three = 0, five = 0, both = 0;
    for (int i = 1; i <= n; i++) {
        three++;
        five++;
        if (three == 3 && five == 5) { putchar('Z'); three = 0; five = 0; both++; }
        else if (three == 3) { putchar('F'); three = 0; }
        else if (five == 5) { putchar('B'); five = 0; }
        else putchar('.');
    }
    putchar('\n');
    return both;
}

int main(void) {
    return fizzbuzz(45);   /* exit status: how many multiples of 15 (3) */
}
