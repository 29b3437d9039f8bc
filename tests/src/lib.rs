//! Lab harness: network namespaces, veth pairs, real Linux peers.
