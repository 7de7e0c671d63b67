// wanemu: user-space WAN link between two TUN devices (one per network namespace).
// Per direction: Bernoulli loss, rate via a drop-tail byte queue, one-way delay + jitter,
// order preserved unless reordering is enabled. Config is re-read on SIGHUP; SIGUSR1 writes stats.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#define MAXPKT 65536

typedef struct {
  double rate_bps;      // 0 = unlimited
  int64_t delay_ns;
  int64_t jitter_ns;
  double loss;
  int64_t queue_bytes;
  int reorder;
} dir_cfg;

typedef struct {
  int64_t at_ns;
  uint64_t seq;
  int len;
  unsigned char *data;
} pkt;

typedef struct {
  pkt *heap;
  size_t n, cap;
  int64_t tx_free_ns;     // when the serialiser is free
  int64_t last_deliver_ns; // for order preservation
  uint64_t seq;
  uint64_t in, lost, qdrop, delivered, bytes_delivered;
  dir_cfg cfg;
} dir_state;

static volatile sig_atomic_t reload_flag = 0, stats_flag = 0, stop_flag = 0;
static const char *cfg_path, *stats_path;
static uint64_t rng_state = 0x9E3779B97F4A7C15ULL;

static uint64_t rng_next(void) {  // xorshift64*
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return rng_state * 2685821657736338717ULL;
}
static double rng_unit(void) { return (rng_next() >> 11) * (1.0 / 9007199254740992.0); }

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int earlier(const pkt *a, const pkt *b) { return a->at_ns < b->at_ns || (a->at_ns == b->at_ns && a->seq < b->seq); }

static void heap_push(dir_state *d, pkt p) {
  if (d->n == d->cap) {
    d->cap = d->cap ? d->cap * 2 : 1024;
    d->heap = realloc(d->heap, d->cap * sizeof(pkt));
    if (!d->heap) { perror("realloc"); exit(1); }
  }
  size_t i = d->n++;
  d->heap[i] = p;
  while (i > 0) {
    size_t parent = (i - 1) / 2;
    if (!earlier(&d->heap[i], &d->heap[parent])) break;
    pkt t = d->heap[i]; d->heap[i] = d->heap[parent]; d->heap[parent] = t;
    i = parent;
  }
}

static pkt heap_pop(dir_state *d) {
  pkt top = d->heap[0];
  d->heap[0] = d->heap[--d->n];
  size_t i = 0;
  for (;;) {
    size_t l = 2 * i + 1, r = l + 1, m = i;
    if (l < d->n && earlier(&d->heap[l], &d->heap[m])) m = l;
    if (r < d->n && earlier(&d->heap[r], &d->heap[m])) m = r;
    if (m == i) break;
    pkt t = d->heap[i]; d->heap[i] = d->heap[m]; d->heap[m] = t;
    i = m;
  }
  return top;
}

// Config file: lines "key value"; keys may be prefixed "ab." or "ba." for one direction.
static void load_config(dir_state *ab, dir_state *ba) {
  FILE *f = fopen(cfg_path, "r");
  if (!f) { fprintf(stderr, "wanemu: cannot open %s: %s\n", cfg_path, strerror(errno)); return; }
  char key[64];
  double v;
  while (fscanf(f, "%63s %lf", key, &v) == 2) {
    dir_state *targets[2] = {ab, ba};
    const char *k = key;
    int from = 0, to = 2;
    if (!strncmp(key, "ab.", 3)) { k = key + 3; to = 1; }
    else if (!strncmp(key, "ba.", 3)) { k = key + 3; from = 1; }
    for (int i = from; i < to; i++) {
      dir_cfg *c = &targets[i]->cfg;
      if (!strcmp(k, "rate_bps")) c->rate_bps = v;
      else if (!strcmp(k, "delay_us")) c->delay_ns = (int64_t)(v * 1000);
      else if (!strcmp(k, "jitter_us")) c->jitter_ns = (int64_t)(v * 1000);
      else if (!strcmp(k, "loss")) c->loss = v;
      else if (!strcmp(k, "queue_bytes")) c->queue_bytes = (int64_t)v;
      else if (!strcmp(k, "reorder")) c->reorder = v != 0;
      else if (!strcmp(k, "seed")) { if (v != 0) rng_state = (uint64_t)v * 0x9E3779B97F4A7C15ULL; }
    }
  }
  fclose(f);
  fprintf(stderr, "wanemu: config ab rate=%.0f delay=%lldus jitter=%lldus loss=%g queue=%lld reorder=%d\n",
          ab->cfg.rate_bps, (long long)ab->cfg.delay_ns / 1000, (long long)ab->cfg.jitter_ns / 1000, ab->cfg.loss,
          (long long)ab->cfg.queue_bytes, ab->cfg.reorder);
}

static void write_stats(dir_state *ab, dir_state *ba) {
  char tmp[4096];
  snprintf(tmp, sizeof tmp, "%s.tmp", stats_path);
  FILE *f = fopen(tmp, "w");
  if (!f) return;
  dir_state *ds[2] = {ab, ba};
  const char *names[2] = {"ab", "ba"};
  for (int i = 0; i < 2; i++)
    fprintf(f, "%s in=%llu lost=%llu qdrop=%llu delivered=%llu bytes=%llu queued=%zu\n", names[i],
            (unsigned long long)ds[i]->in, (unsigned long long)ds[i]->lost, (unsigned long long)ds[i]->qdrop,
            (unsigned long long)ds[i]->delivered, (unsigned long long)ds[i]->bytes_delivered, ds[i]->n);
  fclose(f);
  rename(tmp, stats_path);
}

// Opens (attaches to) the persistent TUN device `dev` inside the namespace at `nspath`.
static int open_tun(const char *nspath, const char *dev) {
  int self = open("/proc/self/ns/net", O_RDONLY);
  int ns = open(nspath, O_RDONLY);
  if (self < 0 || ns < 0 || setns(ns, CLONE_NEWNET) != 0) { perror("setns"); exit(1); }
  int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK);
  if (fd < 0) { perror("open /dev/net/tun"); exit(1); }
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
  strncpy(ifr.ifr_name, dev, IFNAMSIZ - 1);
  if (ioctl(fd, TUNSETIFF, &ifr) != 0) { fprintf(stderr, "TUNSETIFF %s: %s\n", dev, strerror(errno)); exit(1); }
  if (setns(self, CLONE_NEWNET) != 0) { perror("setns back"); exit(1); }
  close(self);
  close(ns);
  return fd;
}

// Reads every packet waiting on `fd` and schedules it in `d`.
static void ingest(int fd, dir_state *d) {
  static unsigned char buf[MAXPKT];
  for (int burst = 0; burst < 256; burst++) {
    ssize_t len = read(fd, buf, sizeof buf);
    if (len <= 0) return;
    int64_t now = now_ns();
    dir_cfg *c = &d->cfg;
    d->in++;
    if (c->loss > 0 && rng_unit() < c->loss) { d->lost++; continue; }
    int64_t depart = now;
    if (c->rate_bps > 0) {
      int64_t start = d->tx_free_ns > now ? d->tx_free_ns : now;
      // Backlog = bytes still to serialise ahead of this packet.
      double backlog = (double)(start - now) * c->rate_bps / 8e9;
      if (c->queue_bytes > 0 && backlog + len > (double)c->queue_bytes) { d->qdrop++; continue; }
      depart = start + (int64_t)((double)len * 8e9 / c->rate_bps);
      d->tx_free_ns = depart;
    }
    int64_t at = depart + c->delay_ns;
    if (c->jitter_ns > 0) at += (int64_t)((rng_unit() * 2 - 1) * (double)c->jitter_ns);
    if (at < depart) at = depart;
    if (!c->reorder && at < d->last_deliver_ns) at = d->last_deliver_ns;
    if (at > d->last_deliver_ns) d->last_deliver_ns = at;
    pkt p = {at, d->seq++, (int)len, malloc((size_t)len)};
    if (!p.data) { perror("malloc"); exit(1); }
    memcpy(p.data, buf, (size_t)len);
    heap_push(d, p);
  }
}

static void deliver(int fd, dir_state *d, int64_t now) {
  while (d->n > 0 && d->heap[0].at_ns <= now) {
    pkt p = heap_pop(d);
    if (write(fd, p.data, (size_t)p.len) == p.len) { d->delivered++; d->bytes_delivered += (uint64_t)p.len; }
    free(p.data);
  }
}

static void on_hup(int s) { (void)s; reload_flag = 1; }
static void on_usr1(int s) { (void)s; stats_flag = 1; }
static void on_term(int s) { (void)s; stop_flag = 1; }

int main(int argc, char **argv) {
  if (argc != 7) {
    fprintf(stderr, "usage: wanemu <netns-a path> <dev-a> <netns-b path> <dev-b> <config file> <stats file>\n");
    return 2;
  }
  // Default timer slack (50 us) would blur packet spacing at high rates.
  prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
  cfg_path = argv[5];
  stats_path = argv[6];
  int fa = open_tun(argv[1], argv[2]);
  int fb = open_tun(argv[3], argv[4]);
  dir_state ab, ba;
  memset(&ab, 0, sizeof ab);
  memset(&ba, 0, sizeof ba);
  load_config(&ab, &ba);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_hup; sigaction(SIGHUP, &sa, NULL);
  sa.sa_handler = on_usr1; sigaction(SIGUSR1, &sa, NULL);
  sa.sa_handler = on_term; sigaction(SIGTERM, &sa, NULL); sigaction(SIGINT, &sa, NULL);
  write_stats(&ab, &ba);
  fprintf(stderr, "wanemu: running\n");
  while (!stop_flag) {
    if (reload_flag) { reload_flag = 0; load_config(&ab, &ba); }
    if (stats_flag) { stats_flag = 0; write_stats(&ab, &ba); }
    int64_t now = now_ns();
    deliver(fb, &ab, now);
    deliver(fa, &ba, now);
    int64_t next = INT64_MAX;
    if (ab.n) next = ab.heap[0].at_ns;
    if (ba.n && ba.heap[0].at_ns < next) next = ba.heap[0].at_ns;
    struct timespec ts, *tsp = NULL;
    if (next != INT64_MAX) {
      int64_t wait = next - now_ns();
      if (wait < 0) wait = 0;
      ts.tv_sec = wait / 1000000000LL;
      ts.tv_nsec = wait % 1000000000LL;
      tsp = &ts;
    }
    struct pollfd pfd[2] = {{fa, POLLIN, 0}, {fb, POLLIN, 0}};
    int r = ppoll(pfd, 2, tsp, NULL);
    if (r < 0 && errno != EINTR) { perror("ppoll"); break; }
    if (r > 0) {
      if (pfd[0].revents & POLLIN) ingest(fa, &ab);
      if (pfd[1].revents & POLLIN) ingest(fb, &ba);
    }
  }
  write_stats(&ab, &ba);
  return 0;
}
