// netprobe: the traffic and packet tool the xfrm baseline runs inside its qemu guest.
//
// Why a C tool at all: the guest is a busybox initramfs. Busybox's nc has no UDP and no timing,
// busybox's date has no sub-second clock, and there is no tcpdump. The scenarios need known
// payloads whose integrity is checked on arrival, monotonic nanosecond timings taken inside the
// guest (the host's clock includes TCG scheduling of the whole VM), and raw ESP frames in and out
// of the guest's xfrm for the bit-level interoperability checks. Built once on the host with
// `cc -static` and cached; no libraries beyond libc.
//
//   netprobe udp-send  DST PORT COUNT SIZE          datagrams carrying pattern(seq, i)
//   netprobe udp-recv  PORT COUNT TIMEOUT_MS         verify each datagram, print a summary
//   netprobe tcp-send  DST PORT BYTES                stream pattern bytes, time until peer closes
//   netprobe tcp-recv  PORT TIMEOUT_MS               accept one stream, verify, time first..EOF
//   netprobe capture   IFACE FILE COUNT TIMEOUT_MS [IPPROTO]   frames seen on IFACE -> pcap
//   netprobe inject    IFACE FILE [REPEAT]           send every frame of a pcap out of IFACE,
//                                                    REPEAT times over, timed
//
// Every command prints one `key=value ...` summary line on stdout that the scenario scripts keep
// as a result file, and exits non-zero when the data did not arrive intact.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static void die(const char *what) {
  fprintf(stderr, "netprobe: %s: %s\n", what, strerror(errno));
  exit(2);
}

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

// The payload pattern: byte i of stream/datagram `seq` is a cheap function of both, so a byte
// that was reordered, duplicated, zeroed or decrypted with the wrong key shows up as a mismatch.
static inline uint8_t pattern(uint32_t seq, uint64_t i) {
  return (uint8_t)((i * 131u) ^ (i >> 8) ^ (seq * 29u) ^ 0x5a);
}

static unsigned long arg_ul(const char *s, const char *name) {
  char *end;
  errno = 0;
  unsigned long v = strtoul(s, &end, 0);
  if (errno || *end || end == s) {
    fprintf(stderr, "netprobe: bad %s: %s\n", name, s);
    exit(2);
  }
  return v;
}

static struct sockaddr_in addr4(const char *ip, unsigned long port) {
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  if (inet_pton(AF_INET, ip, &sa.sin_addr) != 1) {
    fprintf(stderr, "netprobe: bad IPv4 address: %s\n", ip);
    exit(2);
  }
  return sa;
}

// Datagram layout: 4-byte big-endian sequence number, then pattern(seq, 4..size-1).
static int udp_send(const char *dst, unsigned long port, unsigned long count, unsigned long size) {
  if (size < 4 || size > 65000) {
    fprintf(stderr, "netprobe: udp size must be 4..65000\n");
    return 2;
  }
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0) die("socket");
  struct sockaddr_in sa = addr4(dst, port);
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) die("connect");
  uint8_t *buf = malloc(size);
  uint64_t t0 = now_ns();
  unsigned long sent = 0;
  for (uint32_t seq = 0; seq < count; seq++) {
    uint32_t be = htonl(seq);
    memcpy(buf, &be, 4);
    for (unsigned long i = 4; i < size; i++) buf[i] = pattern(seq, i);
    if (send(fd, buf, size, 0) != (ssize_t)size) die("send");
    sent++;
  }
  uint64_t t1 = now_ns();
  printf("udp-send sent=%lu size=%lu elapsed_ns=%llu\n", sent, size, (unsigned long long)(t1 - t0));
  return 0;
}

static int udp_recv(unsigned long port, unsigned long count, unsigned long timeout_ms) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0) die("socket");
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) die("bind");
  // A burst of injected datagrams can outrun this reader; a large buffer keeps socket overflow
  // out of the delivery count. FORCE needs CAP_NET_ADMIN (the guest runs as root); else the
  // default stays.
  int rcvbuf = 64 << 20;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf);
  // Tell the sending side we are listening (scripts wait for this line before sending).
  printf("udp-recv listening port=%lu\n", port);
  fflush(stdout);
  static uint8_t buf[65536];
  unsigned long ok = 0, bad = 0, bytes = 0;
  uint64_t first = 0, last = 0;
  while (ok + bad < count) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int r = poll(&p, 1, (int)timeout_ms);
    if (r < 0) die("poll");
    if (r == 0) break;
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n < 0) die("recv");
    last = now_ns();
    if (!first) first = last;
    bytes += (unsigned long)n;
    int good = n >= 4;
    uint32_t seq = 0;
    if (good) {
      memcpy(&seq, buf, 4);
      seq = ntohl(seq);
      for (ssize_t i = 4; i < n; i++)
        if (buf[i] != pattern(seq, (uint64_t)i)) {
          good = 0;
          break;
        }
    }
    good ? ok++ : bad++;
  }
  printf("udp-recv ok=%lu bad=%lu bytes=%lu elapsed_ns=%llu\n", ok, bad, bytes,
         (unsigned long long)(last - first));
  return (ok == count && bad == 0) ? 0 : 1;
}

static int tcp_send(const char *dst, unsigned long port, unsigned long long total) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) die("socket");
  struct sockaddr_in sa = addr4(dst, port);
  // The listener may come up a moment after us: retry refused connections for ~5 s.
  for (int tries = 0;; tries++) {
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0) break;
    if (errno != ECONNREFUSED || tries == 100) die("connect");
    usleep(50000);
  }
  static uint8_t buf[65536];
  uint64_t t0 = now_ns();
  unsigned long long off = 0;
  while (off < total) {
    size_t n = sizeof buf;
    if (total - off < n) n = (size_t)(total - off);
    for (size_t i = 0; i < n; i++) buf[i] = pattern(0, off + i);
    size_t done = 0;
    while (done < n) {
      ssize_t w = write(fd, buf + done, n - done);
      if (w < 0) die("write");
      done += (size_t)w;
    }
    off += n;
  }
  if (shutdown(fd, SHUT_WR) < 0) die("shutdown");
  // The receiver closes after it has read and verified everything: wait for that, so the time
  // covers delivery and not just filling our socket buffer.
  char c;
  ssize_t r = read(fd, &c, 1);
  uint64_t t1 = now_ns();
  if (r < 0) die("read");
  printf("tcp-send bytes=%llu elapsed_ns=%llu\n", off, (unsigned long long)(t1 - t0));
  return 0;
}

static int tcp_recv(unsigned long port, unsigned long timeout_ms) {
  int ls = socket(AF_INET, SOCK_STREAM, 0);
  if (ls < 0) die("socket");
  int one = 1;
  setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  if (bind(ls, (struct sockaddr *)&sa, sizeof sa) < 0) die("bind");
  if (listen(ls, 1) < 0) die("listen");
  printf("tcp-recv listening port=%lu\n", port);
  fflush(stdout);
  struct pollfd p = {.fd = ls, .events = POLLIN};
  int r = poll(&p, 1, (int)timeout_ms);
  if (r <= 0) {
    printf("tcp-recv ok=0 bad=0 bytes=0 elapsed_ns=0 error=accept-timeout\n");
    return 1;
  }
  int fd = accept(ls, NULL, NULL);
  if (fd < 0) die("accept");
  static uint8_t buf[65536];
  unsigned long long off = 0, bad = 0;
  uint64_t first = 0;
  for (;;) {
    struct pollfd q = {.fd = fd, .events = POLLIN};
    r = poll(&q, 1, (int)timeout_ms);
    if (r < 0) die("poll");
    if (r == 0) {
      printf("tcp-recv ok=0 bad=%llu bytes=%llu elapsed_ns=0 error=read-timeout\n", bad, off);
      return 1;
    }
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0) die("read");
    if (!first) first = now_ns();
    if (n == 0) break;
    for (ssize_t i = 0; i < n; i++)
      if (buf[i] != pattern(0, off + (uint64_t)i)) bad++;
    off += (unsigned long long)n;
  }
  uint64_t t1 = now_ns();
  close(fd);
  printf("tcp-recv ok=%d bad=%llu bytes=%llu elapsed_ns=%llu\n", bad == 0, bad, off,
         (unsigned long long)(t1 - first));
  return bad == 0 && off > 0 ? 0 : 1;
}

// pcap: the classic file format (magic a1b2c3d4, microsecond stamps, LINKTYPE_ETHERNET), which
// every reader understands.
struct pcap_file_header {
  uint32_t magic;
  uint16_t version_major, version_minor;
  int32_t thiszone;
  uint32_t sigfigs, snaplen, linktype;
};
struct pcap_record_header {
  uint32_t ts_sec, ts_usec, incl_len, orig_len;
};

static int packet_socket(const char *iface, struct sockaddr_ll *ll) {
  int fd = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL));
  if (fd < 0) die("socket(AF_PACKET)");
  unsigned idx = if_nametoindex(iface);
  if (!idx) die(iface);
  *ll = (struct sockaddr_ll){.sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL), .sll_ifindex = (int)idx};
  if (bind(fd, (struct sockaddr *)ll, sizeof *ll) < 0) die("bind(AF_PACKET)");
  return fd;
}

// Keeps frames in both directions (a veth shows the frames it sends as PACKET_OUTGOING). With
// IPPROTO given, keeps only IPv4 frames carrying that protocol (50 for ESP).
static int capture(const char *iface, const char *file, unsigned long count, unsigned long timeout_ms,
                   long ipproto) {
  struct sockaddr_ll ll;
  int fd = packet_socket(iface, &ll);
  FILE *out = fopen(file, "wb");
  if (!out) die(file);
  struct pcap_file_header fh = {0xa1b2c3d4, 2, 4, 0, 0, 65535, 1};
  fwrite(&fh, sizeof fh, 1, out);
  fflush(out);
  printf("capture listening iface=%s\n", iface);
  fflush(stdout);
  static uint8_t buf[65536];
  unsigned long kept = 0, seen = 0;
  uint64_t deadline = now_ns() + (uint64_t)timeout_ms * 1000000ull;
  while (kept < count) {
    uint64_t now = now_ns();
    if (now >= deadline) break;
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int r = poll(&p, 1, (int)((deadline - now) / 1000000ull) + 1);
    if (r < 0) die("poll");
    if (r == 0) break;
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n < 0) die("recv");
    seen++;
    if (ipproto >= 0) {
      // Ethernet II, IPv4, protocol byte at 14 + 9.
      if (n < 34 || buf[12] != 0x08 || buf[13] != 0x00 || buf[14 + 9] != (uint8_t)ipproto) continue;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct pcap_record_header rh = {(uint32_t)ts.tv_sec, (uint32_t)(ts.tv_nsec / 1000), (uint32_t)n, (uint32_t)n};
    fwrite(&rh, sizeof rh, 1, out);
    fwrite(buf, 1, (size_t)n, out);
    fflush(out);
    kept++;
  }
  fclose(out);
  printf("capture kept=%lu seen=%lu\n", kept, seen);
  return kept > 0 ? 0 : 1;
}

// Sends each frame out of IFACE as is: on a veth it arrives at the peer's ingress exactly as if
// the peer had received it from a wire, so the peer's xfrm input path sees it unmodified. On a
// veth the peer's receive processing (xfrm included) mostly runs inside sendto, when the softirq
// raised by the transmit runs on bottom-half re-enable; the elapsed time is therefore close to
// the receive path's cost, which is what the scale scenario's active-peer measurement uses.
static int inject(const char *iface, const char *file, unsigned long repeat) {
  struct sockaddr_ll ll;
  int fd = packet_socket(iface, &ll);
  FILE *in = fopen(file, "rb");
  if (!in) die(file);
  struct pcap_file_header fh;
  if (fread(&fh, sizeof fh, 1, in) != 1 || fh.magic != 0xa1b2c3d4 || fh.linktype != 1) {
    fprintf(stderr, "netprobe: %s: not a little-endian microsecond Ethernet pcap\n", file);
    return 2;
  }
  // Load every frame first so the timed loop does no file I/O.
  size_t cap = 1 << 20, used = 0, frames = 0;
  uint8_t *all = malloc(cap);
  uint32_t *lens = NULL;
  struct pcap_record_header rh;
  while (fread(&rh, sizeof rh, 1, in) == 1) {
    if (rh.incl_len > 65535 || rh.incl_len != rh.orig_len) {
      fprintf(stderr, "netprobe: %s: record %zu truncated or oversized\n", file, frames);
      return 2;
    }
    while (used + rh.incl_len > cap) all = realloc(all, cap *= 2);
    if (fread(all + used, 1, rh.incl_len, in) != rh.incl_len) {
      fprintf(stderr, "netprobe: %s: short record %zu\n", file, frames);
      return 2;
    }
    lens = realloc(lens, (frames + 1) * sizeof *lens);
    lens[frames++] = rh.incl_len;
    used += rh.incl_len;
  }
  if (!all || (frames && !lens)) die("malloc");
  unsigned long sent = 0;
  uint64_t t0 = now_ns();
  for (unsigned long r = 0; r < repeat; r++) {
    size_t off = 0;
    for (size_t i = 0; i < frames; i++) {
      if (sendto(fd, all + off, lens[i], 0, (struct sockaddr *)&ll, sizeof ll) != (ssize_t)lens[i]) die("sendto");
      off += lens[i];
      sent++;
    }
  }
  uint64_t t1 = now_ns();
  printf("inject sent=%lu frames=%zu repeat=%lu elapsed_ns=%llu\n", sent, frames, repeat,
         (unsigned long long)(t1 - t0));
  return sent > 0 ? 0 : 1;
}

static void usage(void) {
  fprintf(stderr,
          "usage: netprobe udp-send DST PORT COUNT SIZE | udp-recv PORT COUNT TIMEOUT_MS |\n"
          "       tcp-send DST PORT BYTES | tcp-recv PORT TIMEOUT_MS |\n"
          "       capture IFACE FILE COUNT TIMEOUT_MS [IPPROTO] | inject IFACE FILE [REPEAT]\n");
  exit(2);
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc < 2) usage();
  const char *cmd = argv[1];
  if (!strcmp(cmd, "udp-send") && argc == 6)
    return udp_send(argv[2], arg_ul(argv[3], "port"), arg_ul(argv[4], "count"), arg_ul(argv[5], "size"));
  if (!strcmp(cmd, "udp-recv") && argc == 5)
    return udp_recv(arg_ul(argv[2], "port"), arg_ul(argv[3], "count"), arg_ul(argv[4], "timeout"));
  if (!strcmp(cmd, "tcp-send") && argc == 5)
    return tcp_send(argv[2], arg_ul(argv[3], "port"), strtoull(argv[4], NULL, 0));
  if (!strcmp(cmd, "tcp-recv") && argc == 4) return tcp_recv(arg_ul(argv[2], "port"), arg_ul(argv[3], "timeout"));
  if (!strcmp(cmd, "capture") && (argc == 6 || argc == 7))
    return capture(argv[2], argv[3], arg_ul(argv[4], "count"), arg_ul(argv[5], "timeout"),
                   argc == 7 ? (long)arg_ul(argv[6], "ipproto") : -1);
  if (!strcmp(cmd, "inject") && (argc == 4 || argc == 5))
    return inject(argv[2], argv[3], argc == 5 ? arg_ul(argv[4], "repeat") : 1);
  usage();
  return 2;
}
