/*
 * tandem_shim: one-line C wrappers around DPDK's `static inline` fast-path functions.
 *
 * Rust cannot call a `static inline` function (there is no symbol to link against), and
 * `rte_errno` / `rte_lcore_id()` read C thread-locals that Rust cannot name. Each wrapper
 * here is a plain extern function that calls the inline one; compiled with the exact
 * `pkg-config --cflags libdpdk` flags, so it behaves as the same call in C would.
 */
#ifndef TANDEM_SHIM_H
#define TANDEM_SHIM_H

#include <stdint.h>

struct rte_mbuf;
struct rte_mempool;
struct rte_ring;

/* ethdev fast path */
uint16_t tandem_shim_eth_rx_burst(uint16_t port_id, uint16_t queue_id,
                                  struct rte_mbuf **rx_pkts, uint16_t nb_pkts);
uint16_t tandem_shim_eth_tx_burst(uint16_t port_id, uint16_t queue_id,
                                  struct rte_mbuf **tx_pkts, uint16_t nb_pkts);

/* mbuf */
struct rte_mbuf *tandem_shim_pktmbuf_alloc(struct rte_mempool *mp);
int tandem_shim_pktmbuf_alloc_bulk(struct rte_mempool *mp, struct rte_mbuf **mbufs,
                                   unsigned int count);
void tandem_shim_pktmbuf_free(struct rte_mbuf *m);
void *tandem_shim_pktmbuf_mtod(struct rte_mbuf *m);
uint16_t tandem_shim_pktmbuf_data_len(const struct rte_mbuf *m);
uint32_t tandem_shim_pktmbuf_pkt_len(const struct rte_mbuf *m);
char *tandem_shim_pktmbuf_append(struct rte_mbuf *m, uint16_t len);
char *tandem_shim_pktmbuf_prepend(struct rte_mbuf *m, uint16_t len);
char *tandem_shim_pktmbuf_adj(struct rte_mbuf *m, uint16_t len);
int tandem_shim_pktmbuf_trim(struct rte_mbuf *m, uint16_t len);
uint16_t tandem_shim_pktmbuf_headroom(const struct rte_mbuf *m);
uint16_t tandem_shim_pktmbuf_tailroom(const struct rte_mbuf *m);
int tandem_shim_pktmbuf_is_contiguous(const struct rte_mbuf *m);
uint32_t tandem_shim_mbuf_rss_hash(const struct rte_mbuf *m);

/* lcore, time, errno */
unsigned int tandem_shim_lcore_id(void);
uint64_t tandem_shim_rdtsc(void);
uint64_t tandem_shim_get_tsc_hz(void);
int tandem_shim_errno(void);
void tandem_shim_pause(void);

/* ring (objects are opaque pointers; the safe layer stores mbufs) */
unsigned int tandem_shim_ring_enqueue_burst(struct rte_ring *r, void *const *obj_table,
                                            unsigned int n, unsigned int *free_space);
unsigned int tandem_shim_ring_dequeue_burst(struct rte_ring *r, void **obj_table,
                                            unsigned int n, unsigned int *available);
unsigned int tandem_shim_ring_count(const struct rte_ring *r);

#endif /* TANDEM_SHIM_H */
