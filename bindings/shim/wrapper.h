/*
 * Everything bindgen sees. Included headers are the public DPDK API the safe layer uses;
 * shim.h declares the wrappers for DPDK's `static inline` fast path.
 */
#include <rte_config.h>
#include <rte_bus_vdev.h>
#include <rte_cycles.h>
#include <rte_dev.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_ring.h>
#include <rte_version.h>

#include "shim.h"

/*
 * DPDK builds these masks with the function-like macro RTE_BIT64(), which bindgen cannot
 * expand; re-state them as constants clang can evaluate so they reach Rust exactly.
 */
static const uint64_t TANDEM_ETH_RSS_IP = RTE_ETH_RSS_IP;
static const uint64_t TANDEM_ETH_RSS_TCP = RTE_ETH_RSS_TCP;
static const uint64_t TANDEM_ETH_RSS_UDP = RTE_ETH_RSS_UDP;
static const uint64_t TANDEM_ETH_RX_OFFLOAD_RSS_HASH = RTE_ETH_RX_OFFLOAD_RSS_HASH;
static const uint64_t TANDEM_ETH_TX_OFFLOAD_MBUF_FAST_FREE = RTE_ETH_TX_OFFLOAD_MBUF_FAST_FREE;
static const uint64_t TANDEM_MBUF_F_RX_RSS_HASH = RTE_MBUF_F_RX_RSS_HASH;
