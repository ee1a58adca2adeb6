/* The C library's side of bench/int8_bench.cc: the emitted model_i8/model.c
 * compiled with this driver (gcc -std=c99 -O2, one thread: the library has
 * one static arena and is not reentrant, as on a microcontroller).
 *
 *   int8_c_driver INPUTS.i8 ROWS OUTPUTS.i8
 *
 * INPUTS.i8 holds ROWS inputs of IMPULSE_MODEL_INPUT_SIZE int8 values
 * (pixel - 128). One untimed pass writes the outputs (ROWS x
 * IMPULSE_MODEL_OUTPUT_SIZE int8) to OUTPUTS.i8, then one timed pass. Prints
 * one JSON line: {"side":"c","images":N,"seconds":S,"images_per_s":R}. */
#define _POSIX_C_SOURCE 199309L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "model.h"

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int main(int argc, char **argv) {
  FILE *in, *out;
  long rows, r;
  int8_t *inputs, *outputs;
  double started, seconds;
  if (argc != 4 || (rows = atol(argv[2])) <= 0) {
    fprintf(stderr, "usage: int8_c_driver INPUTS.i8 ROWS OUTPUTS.i8\n");
    return 2;
  }
  inputs = malloc((size_t)rows * IMPULSE_MODEL_INPUT_SIZE);
  outputs = malloc((size_t)rows * IMPULSE_MODEL_OUTPUT_SIZE);
  in = fopen(argv[1], "rb");
  if (!inputs || !outputs || !in ||
      fread(inputs, IMPULSE_MODEL_INPUT_SIZE, (size_t)rows, in) != (size_t)rows) {
    fprintf(stderr, "int8_c_driver: cannot read %ld inputs from %s\n", rows, argv[1]);
    return 1;
  }
  fclose(in);
  for (r = 0; r < rows; ++r) {
    impulse_model_invoke(inputs + r * IMPULSE_MODEL_INPUT_SIZE,
                         outputs + r * IMPULSE_MODEL_OUTPUT_SIZE);
  }
  out = fopen(argv[3], "wb");
  if (!out || fwrite(outputs, IMPULSE_MODEL_OUTPUT_SIZE, (size_t)rows, out) != (size_t)rows) {
    fprintf(stderr, "int8_c_driver: cannot write %s\n", argv[3]);
    return 1;
  }
  fclose(out);
  started = now_s();
  for (r = 0; r < rows; ++r) {
    impulse_model_invoke(inputs + r * IMPULSE_MODEL_INPUT_SIZE,
                         outputs + r * IMPULSE_MODEL_OUTPUT_SIZE);
  }
  seconds = now_s() - started;
  printf("{\"side\":\"c\",\"images\":%ld,\"seconds\":%.6f,\"images_per_s\":%.3f}\n", rows, seconds,
         (double)rows / seconds);
  free(inputs);
  free(outputs);
  return 0;
}
