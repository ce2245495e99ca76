// libbpf's ELF section names → program type, expected attach type and sleepability
// (tools/lib/bpf/libbpf.c, section_defs[]). A name matches an entry exactly, or, for entries
// marked `prefix`, as "<entry>/<anything>" (kprobe/do_unlinkat, fentry/tcp_sendmsg, …).
// Numbers are the kernel's enum bpf_prog_type / bpf_attach_type (include/uapi/linux/bpf.h).

export const ProgType = {
  UNSPEC: 0,
  SOCKET_FILTER: 1,
  KPROBE: 2,
  SCHED_CLS: 3,
  SCHED_ACT: 4,
  TRACEPOINT: 5,
  XDP: 6,
  PERF_EVENT: 7,
  CGROUP_SKB: 8,
  CGROUP_SOCK: 9,
  LWT_IN: 10,
  LWT_OUT: 11,
  LWT_XMIT: 12,
  SOCK_OPS: 13,
  SK_SKB: 14,
  CGROUP_DEVICE: 15,
  SK_MSG: 16,
  RAW_TRACEPOINT: 17,
  CGROUP_SOCK_ADDR: 18,
  LWT_SEG6LOCAL: 19,
  LIRC_MODE2: 20,
  SK_REUSEPORT: 21,
  FLOW_DISSECTOR: 22,
  CGROUP_SYSCTL: 23,
  RAW_TRACEPOINT_WRITABLE: 24,
  CGROUP_SOCKOPT: 25,
  TRACING: 26,
  STRUCT_OPS: 27,
  EXT: 28,
  LSM: 29,
  SK_LOOKUP: 30,
  SYSCALL: 31,
  NETFILTER: 32,
} as const;

export const AttachType = {
  NONE: 0, // BPF_CGROUP_INET_INGRESS is also 0; programs without an attach type pass 0
  CGROUP_INET_INGRESS: 0,
  CGROUP_INET_EGRESS: 1,
  CGROUP_INET_SOCK_CREATE: 2,
  CGROUP_SOCK_OPS: 3,
  SK_SKB_STREAM_PARSER: 4,
  SK_SKB_STREAM_VERDICT: 5,
  CGROUP_DEVICE: 6,
  SK_MSG_VERDICT: 7,
  FLOW_DISSECTOR: 17,
  CGROUP_SYSCTL: 18,
  TRACE_RAW_TP: 23,
  TRACE_FENTRY: 24,
  TRACE_FEXIT: 25,
  MODIFY_RETURN: 26,
  LSM_MAC: 27,
  TRACE_ITER: 28,
  SK_LOOKUP: 36,
  XDP: 37,
  SK_SKB_VERDICT: 38,
  PERF_EVENT: 41,
  TRACE_KPROBE_MULTI: 42,
  NETFILTER: 45,
  TCX_INGRESS: 46,
  TCX_EGRESS: 47,
  NETKIT_PRIMARY: 54,
  NETKIT_PEER: 55,
} as const;

export interface SectionDef {
  progType: number;
  attachType: number;
  sleepable: boolean;
}

interface Entry extends SectionDef {
  name: string;
  prefix: boolean; // also matches "<name>/…"
}

const def = (name: string, progType: number, attachType = 0, opts: { prefix?: boolean; sleepable?: boolean } = {}): Entry => ({
  name,
  progType,
  attachType,
  prefix: opts.prefix ?? false,
  sleepable: opts.sleepable ?? false,
});

const P = ProgType;
const A = AttachType;

/** In libbpf's order; the first match wins. */
const SECTIONS: readonly Entry[] = [
  def('socket', P.SOCKET_FILTER, 0, { prefix: true }),
  def('kprobe', P.KPROBE, 0, { prefix: true }),
  def('uprobe', P.KPROBE, 0, { prefix: true }),
  def('uprobe.s', P.KPROBE, 0, { prefix: true, sleepable: true }),
  def('kretprobe', P.KPROBE, 0, { prefix: true }),
  def('uretprobe', P.KPROBE, 0, { prefix: true }),
  def('uretprobe.s', P.KPROBE, 0, { prefix: true, sleepable: true }),
  def('kprobe.multi', P.KPROBE, A.TRACE_KPROBE_MULTI, { prefix: true }),
  def('kretprobe.multi', P.KPROBE, A.TRACE_KPROBE_MULTI, { prefix: true }),
  def('tc/ingress', P.SCHED_CLS, A.TCX_INGRESS),
  def('tc/egress', P.SCHED_CLS, A.TCX_EGRESS),
  def('tcx/ingress', P.SCHED_CLS, A.TCX_INGRESS),
  def('tcx/egress', P.SCHED_CLS, A.TCX_EGRESS),
  def('tc', P.SCHED_CLS, 0, { prefix: true }),
  def('classifier', P.SCHED_CLS, 0, { prefix: true }),
  def('action', P.SCHED_ACT, 0, { prefix: true }),
  def('netkit/primary', P.SCHED_CLS, A.NETKIT_PRIMARY),
  def('netkit/peer', P.SCHED_CLS, A.NETKIT_PEER),
  def('tracepoint', P.TRACEPOINT, 0, { prefix: true }),
  def('tp', P.TRACEPOINT, 0, { prefix: true }),
  def('raw_tracepoint', P.RAW_TRACEPOINT, 0, { prefix: true }),
  def('raw_tp', P.RAW_TRACEPOINT, 0, { prefix: true }),
  def('raw_tracepoint.w', P.RAW_TRACEPOINT_WRITABLE, 0, { prefix: true }),
  def('raw_tp.w', P.RAW_TRACEPOINT_WRITABLE, 0, { prefix: true }),
  def('tp_btf', P.TRACING, A.TRACE_RAW_TP, { prefix: true }),
  def('fentry', P.TRACING, A.TRACE_FENTRY, { prefix: true }),
  def('fmod_ret', P.TRACING, A.MODIFY_RETURN, { prefix: true }),
  def('fexit', P.TRACING, A.TRACE_FEXIT, { prefix: true }),
  def('fentry.s', P.TRACING, A.TRACE_FENTRY, { prefix: true, sleepable: true }),
  def('fmod_ret.s', P.TRACING, A.MODIFY_RETURN, { prefix: true, sleepable: true }),
  def('fexit.s', P.TRACING, A.TRACE_FEXIT, { prefix: true, sleepable: true }),
  def('freplace', P.EXT, 0, { prefix: true }),
  def('lsm', P.LSM, A.LSM_MAC, { prefix: true }),
  def('lsm.s', P.LSM, A.LSM_MAC, { prefix: true, sleepable: true }),
  def('iter', P.TRACING, A.TRACE_ITER, { prefix: true }),
  def('iter.s', P.TRACING, A.TRACE_ITER, { prefix: true, sleepable: true }),
  def('syscall', P.SYSCALL, 0, { sleepable: true }),
  def('xdp.frags/devmap', P.XDP, 33),
  def('xdp/devmap', P.XDP, 33),
  def('xdp.frags/cpumap', P.XDP, 35),
  def('xdp/cpumap', P.XDP, 35),
  def('xdp', P.XDP, A.XDP, { prefix: true }),
  def('perf_event', P.PERF_EVENT, 0, { prefix: true }),
  def('lwt_in', P.LWT_IN, 0, { prefix: true }),
  def('lwt_out', P.LWT_OUT, 0, { prefix: true }),
  def('lwt_xmit', P.LWT_XMIT, 0, { prefix: true }),
  def('lwt_seg6local', P.LWT_SEG6LOCAL, 0, { prefix: true }),
  def('sockops', P.SOCK_OPS, A.CGROUP_SOCK_OPS),
  def('sk_skb/stream_parser', P.SK_SKB, A.SK_SKB_STREAM_PARSER),
  def('sk_skb/stream_verdict', P.SK_SKB, A.SK_SKB_STREAM_VERDICT),
  def('sk_skb/verdict', P.SK_SKB, A.SK_SKB_VERDICT),
  def('sk_skb', P.SK_SKB, 0, { prefix: true }),
  def('sk_msg', P.SK_MSG, A.SK_MSG_VERDICT),
  def('flow_dissector', P.FLOW_DISSECTOR, A.FLOW_DISSECTOR),
  def('cgroup_skb/ingress', P.CGROUP_SKB, A.CGROUP_INET_INGRESS),
  def('cgroup_skb/egress', P.CGROUP_SKB, A.CGROUP_INET_EGRESS),
  def('cgroup/skb', P.CGROUP_SKB, 0),
  def('cgroup/sock_create', P.CGROUP_SOCK, A.CGROUP_INET_SOCK_CREATE),
  def('cgroup/sock', P.CGROUP_SOCK, A.CGROUP_INET_SOCK_CREATE),
  def('cgroup/dev', P.CGROUP_DEVICE, A.CGROUP_DEVICE),
  def('cgroup/sysctl', P.CGROUP_SYSCTL, A.CGROUP_SYSCTL),
  def('sk_lookup', P.SK_LOOKUP, A.SK_LOOKUP),
  def('netfilter', P.NETFILTER, A.NETFILTER),
  def('struct_ops', P.STRUCT_OPS, 0, { prefix: true }),
  def('struct_ops.s', P.STRUCT_OPS, 0, { prefix: true, sleepable: true }),
];

/** What libbpf would load a program in section `name` as; undefined for unknown sections. */
export function sectionDef(name: string): SectionDef | undefined {
  for (const e of SECTIONS) {
    if (name === e.name || (e.prefix && name.startsWith(e.name + '/'))) {
      return { progType: e.progType, attachType: e.attachType, sleepable: e.sleepable };
    }
  }
  return undefined;
}
