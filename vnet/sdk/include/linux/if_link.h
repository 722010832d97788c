/*
 * <linux/if_link.h> — vnet SDK: rtnetlink's link attributes with Linux's
 * values (IFLA_*, IF_OPER_*, IFLA_INFO_*, struct rtnl_link_stats).
 */
#ifndef __vnet_linux_if_link_h
#define __vnet_linux_if_link_h

#include <stdint.h>
#include <linux/netlink.h>

struct rtnl_link_stats {
    uint32_t rx_packets, tx_packets, rx_bytes, tx_bytes, rx_errors, tx_errors;
    uint32_t rx_dropped, tx_dropped, multicast, collisions;
    uint32_t rx_length_errors, rx_over_errors, rx_crc_errors, rx_frame_errors;
    uint32_t rx_fifo_errors, rx_missed_errors;
    uint32_t tx_aborted_errors, tx_carrier_errors, tx_fifo_errors, tx_heartbeat_errors;
    uint32_t tx_window_errors;
    uint32_t rx_compressed, tx_compressed;
    uint32_t rx_nohandler;
};

struct rtnl_link_stats64 {
    uint64_t rx_packets, tx_packets, rx_bytes, tx_bytes, rx_errors, tx_errors;
    uint64_t rx_dropped, tx_dropped, multicast, collisions;
    uint64_t rx_length_errors, rx_over_errors, rx_crc_errors, rx_frame_errors;
    uint64_t rx_fifo_errors, rx_missed_errors;
    uint64_t tx_aborted_errors, tx_carrier_errors, tx_fifo_errors, tx_heartbeat_errors;
    uint64_t tx_window_errors;
    uint64_t rx_compressed, tx_compressed;
    uint64_t rx_nohandler;
    uint64_t rx_otherhost_dropped;
};

enum {
    IFLA_UNSPEC,
    IFLA_ADDRESS,
    IFLA_BROADCAST,
    IFLA_IFNAME,
    IFLA_MTU,
    IFLA_LINK,
    IFLA_QDISC,
    IFLA_STATS,
    IFLA_COST,
    IFLA_PRIORITY,
    IFLA_MASTER,
    IFLA_WIRELESS,
    IFLA_PROTINFO,
    IFLA_TXQLEN,
    IFLA_MAP,
    IFLA_WEIGHT,
    IFLA_OPERSTATE,
    IFLA_LINKMODE,
    IFLA_LINKINFO,
    IFLA_NET_NS_PID,
    IFLA_IFALIAS,
    IFLA_NUM_VF,
    IFLA_VFINFO_LIST,
    IFLA_STATS64,
    IFLA_VF_PORTS,
    IFLA_PORT_SELF,
    IFLA_AF_SPEC,
    IFLA_GROUP,
    IFLA_NET_NS_FD,
    IFLA_EXT_MASK,
    IFLA_PROMISCUITY,
    IFLA_NUM_TX_QUEUES,
    IFLA_NUM_RX_QUEUES,
    IFLA_CARRIER,
    IFLA_PHYS_PORT_ID,
    IFLA_CARRIER_CHANGES,
    IFLA_PHYS_SWITCH_ID,
    IFLA_LINK_NETNSID,
    IFLA_PHYS_PORT_NAME,
    IFLA_PROTO_DOWN,
    IFLA_GSO_MAX_SEGS,
    IFLA_GSO_MAX_SIZE,
    IFLA_PAD,
    IFLA_XDP,
    IFLA_EVENT,
    IFLA_NEW_NETNSID,
    IFLA_IF_NETNSID,
    IFLA_TARGET_NETNSID = IFLA_IF_NETNSID,
    IFLA_CARRIER_UP_COUNT,
    IFLA_CARRIER_DOWN_COUNT,
    IFLA_NEW_IFINDEX,
    IFLA_MIN_MTU,
    IFLA_MAX_MTU,
    IFLA_PROP_LIST,
    IFLA_ALT_IFNAME,
    IFLA_PERM_ADDRESS,
    IFLA_PROTO_DOWN_REASON,
    IFLA_PARENT_DEV_NAME,
    IFLA_PARENT_DEV_BUS_NAME,
    IFLA_GRO_MAX_SIZE,
    IFLA_TSO_MAX_SIZE,
    IFLA_TSO_MAX_SEGS,
    IFLA_ALLMULTI,
    __IFLA_MAX
};
#define IFLA_MAX (__IFLA_MAX - 1)

#define IFLA_RTA(r) ((struct rtattr *)(((char *)(r)) + NLMSG_ALIGN(sizeof(struct ifinfomsg))))
#define IFLA_PAYLOAD(n) NLMSG_PAYLOAD(n, sizeof(struct ifinfomsg))

enum {
    IF_OPER_UNKNOWN,
    IF_OPER_NOTPRESENT,
    IF_OPER_DOWN,
    IF_OPER_LOWERLAYERDOWN,
    IF_OPER_TESTING,
    IF_OPER_DORMANT,
    IF_OPER_UP,
};

enum {
    IF_LINK_MODE_DEFAULT,
    IF_LINK_MODE_DORMANT,
    IF_LINK_MODE_TESTING,
};

enum {
    IFLA_INFO_UNSPEC,
    IFLA_INFO_KIND,
    IFLA_INFO_DATA,
    IFLA_INFO_XSTATS,
    IFLA_INFO_SLAVE_KIND,
    IFLA_INFO_SLAVE_DATA,
    __IFLA_INFO_MAX,
};
#define IFLA_INFO_MAX (__IFLA_INFO_MAX - 1)

#endif
