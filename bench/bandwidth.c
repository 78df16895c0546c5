// Memory read bandwidth: a vectorisable sum over a 512 MiB buffer, on 1 and on N threads.
// Printed as JSON: {"threads_1_gbps": x, "threads_n_gbps": y, "threads": n}. Best of 5 runs each.
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define BYTES (512UL << 20)

typedef struct { const float *p; size_t n; float sum; } Job;

static void *sum_part(void *arg) {
  Job *j = arg;
  float acc[16] = {0};
  for (size_t i = 0; i + 16 <= j->n; i += 16)
    for (int k = 0; k < 16; k++) acc[k] += j->p[i + k];
  float s = 0;
  for (int k = 0; k < 16; k++) s += acc[k];
  j->sum = s;
  return NULL;
}

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

static double run(const float *p, size_t n, int threads) {
  double best = 0;
  for (int r = 0; r < 5; r++) {
    pthread_t th[64];
    Job jobs[64];
    double t0 = now();
    for (int t = 0; t < threads; t++) {
      jobs[t].p = p + n / threads * t;
      jobs[t].n = n / threads;
      pthread_create(&th[t], NULL, sum_part, &jobs[t]);
    }
    float total = 0;
    for (int t = 0; t < threads; t++) {
      pthread_join(th[t], NULL);
      total += jobs[t].sum;
    }
    double dt = now() - t0;
    if (total == 12345.0f) fprintf(stderr, "unlikely\n"); // keep the sum alive
    double gbps = BYTES / dt / 1e9;
    if (gbps > best) best = gbps;
  }
  return best;
}

int main(int argc, char **argv) {
  int threads = argc > 1 ? atoi(argv[1]) : 2;
  if (threads < 1 || threads > 64) threads = 2;
  size_t n = BYTES / sizeof(float);
  float *p = aligned_alloc(64, BYTES);
  if (!p) return 1;
  for (size_t i = 0; i < n; i++) p[i] = (float)(i & 1023);
  double one = run(p, n, 1);
  double many = run(p, n, threads);
  printf("{\"threads_1_gbps\": %.2f, \"threads_n_gbps\": %.2f, \"threads\": %d}\n", one, many, threads);
  free(p);
  return 0;
}
