/* Force-included (clang -include) into every C file rasp2d compiles to WebAssembly.
 *
 * A freestanding wasm32 build has no libc; the machine offers exactly two host functions,
 * imported from module "env". Declaring them here with clang's import attributes lets a plain
 * C file just say `int putchar(int);` / `int getchar(void);` (or nothing at all).
 *   putchar(c): writes the byte c & 0xFF to the output, returns c & 0xFF.
 *   getchar():  returns the next input byte (0..255), or -1 at end of input.
 */
#ifndef RASP2D_WASM_H
#define RASP2D_WASM_H
__attribute__((import_module("env"), import_name("putchar"))) int putchar(int);
__attribute__((import_module("env"), import_name("getchar"))) int getchar(void);
#endif
