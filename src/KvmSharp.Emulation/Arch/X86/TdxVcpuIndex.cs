// SPDX-License-Identifier: MIT
using System.Runtime.CompilerServices;
using KvmSharp.Emulation.KvmMain;
using KvmSharp.Emulation.Vcpu;

namespace KvmSharp.Emulation.Arch;

/// <summary>
/// The TDX module's vCPU numbering that TDG.VP.INFO reports: TDCS NUM_VCPUS counts the vCPUs TDH.VP.CREATE/INIT made
/// (KVM calls them from KVM_TDX_INIT_VCPU, vmx/tdx.c tdx_td_vcpu_init) and TDVPS VCPU_INDEX is the vCPU's place in
/// that order, from 0 (intel/tdx-module tdg_vp_info.c).
/// </summary>
internal static class TdxVcpuIndex
{
    private sealed class Counter
    {
        public int NumVcpus;
    }

    private static readonly ConditionalWeakTable<Kvm, Counter> s_counts = [];
    private static readonly ConditionalWeakTable<KvmVcpu, StrongBox<int>> s_index = [];

    /// <summary>KVM_TDX_INIT_VCPU succeeded for <paramref name="vcpu"/>: it gets the next index.</summary>
    public static void Initialized(KvmVcpu vcpu)
    {
        var c = s_counts.GetValue(vcpu.Kvm, _ => new Counter());
        s_index.AddOrUpdate(vcpu, new StrongBox<int>(Interlocked.Increment(ref c.NumVcpus) - 1));
    }

    public static int NumVcpus(Kvm kvm) => s_counts.TryGetValue(kvm, out var c) ? Volatile.Read(ref c.NumVcpus) : 0;

    public static int Index(KvmVcpu vcpu) => s_index.TryGetValue(vcpu, out var b) ? b.Value : 0;
}
