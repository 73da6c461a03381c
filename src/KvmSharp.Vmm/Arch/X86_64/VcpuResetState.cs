// SPDX-License-Identifier: MIT
using System.Runtime.CompilerServices;
using KvmSharp.Vmm.Snapshots;

namespace KvmSharp.Vmm.Arch.X86_64;

/// <summary>
/// What a vCPU holds at creation, for the state a guest can change and a call does not reload: every MSR the kernel
/// lists in KVM_GET_MSR_INDEX_LIST and takes back (IA32_TSC excepted), the MTRRs and machine-check banks it does not
/// list (<see cref="UnlistedMsrs"/>), and the <see cref="ExtendedVcpuState"/>.
/// <see cref="MicroVm.Reset"/> writes it back, so a pooled micro-VM's next user finds nothing of the last one's —
/// not in XMM registers, and not in an MSR such as IA32_MISC_ENABLE, which KVM lets a guest set to almost any
/// value and read back (x86.c kvm_set_msr_common: only the PMU read-only bits and EMON are kept), a 64-bit channel
/// from one user to the next.
/// </summary>
internal sealed class VcpuResetState
{
    private VcpuResetState(MsrEntry[] msrs, ExtendedVcpuState extended, bool hasTscOffset)
    {
        Msrs = msrs;
        Extended = extended;
        HasTscOffset = hasTscOffset;
    }

    /// <summary>The listed MSRs with their creation values, in the kernel's list order.</summary>
    public MsrEntry[] Msrs { get; }

    public ExtendedVcpuState Extended { get; }

    /// <summary>
    /// Whether the kernel lets the host read and write a vCPU's TSC offset (<see cref="Vcpu.SupportsTscOffset"/>). The
    /// offset is per VM (each VM's TSC starts at 0), so <see cref="MicroVm"/> reads its own at creation and Reset
    /// writes it back: a guest's WRMSR to IA32_TSC moves it (x86.c adjust_tsc_offset_guest) — a channel to the next
    /// user otherwise — while a host write of IA32_TSC would start a new synchronisation, not undo the guest's.
    /// </summary>
    public bool HasTscOffset { get; }

    /// <summary>
    /// The state of a vCPU just created on <paramref name="kvm"/>'s kernel with the CPUID of <paramref name="policy"/>,
    /// read from <paramref name="fresh"/> — which must not have run — the first time, then shared by every micro-VM of
    /// that <see cref="Kvm"/> and policy (the values are the kernel's reset values, the same for every vCPU).
    /// </summary>
    public static VcpuResetState AtCreation(Kvm kvm, CpuidPolicy policy, Vcpu fresh)
    {
        VcpuResetState?[] byPolicy = s_atCreation.GetValue(kvm, static _ => new VcpuResetState?[Enum.GetValues<CpuidPolicy>().Length]);
        int index = (int)policy;
        return Volatile.Read(ref byPolicy[index])
            ?? Interlocked.CompareExchange(ref byPolicy[index], Capture(kvm, fresh), null)
            ?? byPolicy[index]!;
    }

    /// <summary>Writes the MSRs, then the extended state, into <paramref name="vcpu"/>.</summary>
    /// <exception cref="MicroVmException">The kernel refused an MSR it took at capture.</exception>
    public void Load(Vcpu vcpu)
    {
        LoadMsrs(vcpu);
        Extended.Load(vcpu);
    }

    /// <summary>Writes the MSRs' creation values (one KVM_SET_MSRS).</summary>
    /// <exception cref="MicroVmException">The kernel refused one.</exception>
    private void LoadMsrs(Vcpu vcpu)
    {
        if (Msrs.Length == 0) return;
        int written = vcpu.SetMsrs(Msrs);
        if (written != Msrs.Length)
        {
            MsrEntry refused = Msrs[written];
            throw new MicroVmException($"the kernel refused MSR {X86Msr.NameOf(refused.Index)} (0x{refused.Index:X}) = 0x{refused.Value:X}, its value at vCPU creation");
        }
    }

    private static readonly ConditionalWeakTable<Kvm, VcpuResetState?[]> s_atCreation = new();

    /// <summary>
    /// Reads every listed MSR but IA32_TSC (writing it back would rewind the guest's clock: KVM takes a host TSC write
    /// as a new synchronisation point), and the guest-writable ones the list leaves out (<see cref="UnlistedMsrs"/>:
    /// MTRRs, machine-check banks), and writes the values straight back, keeping those the kernel accepts: an MSR may
    /// refuse even its own value (a read-only one on this CPU vendor), and Reset must never fail on one.
    /// </summary>
    private static VcpuResetState Capture(Kvm kvm, Vcpu fresh)
    {
        IReadOnlyList<uint> listed = VcpuState.MsrsOf(kvm).IndexList;
        var candidates = new List<MsrEntry>();
        foreach (uint index in listed)
            if (index != X86Msr.Tsc) candidates.Add(new MsrEntry(index, 0));
        Span<MsrEntry> mcgCap = [new(UnlistedMsrs.McgCap, 0)];
        ulong? cap = fresh.GetMsrs(mcgCap) == 1 ? mcgCap[0].Value : null;
        foreach (uint index in UnlistedMsrs.Candidates(cap))
            if (!listed.Contains(index)) candidates.Add(new MsrEntry(index, 0));
        MsrEntry[] readable = Processed(fresh, [.. candidates], set: false);
        MsrEntry[] accepted = Processed(fresh, readable, set: true);
        return new VcpuResetState(accepted, ExtendedVcpuState.Capture(fresh), fresh.SupportsTscOffset);
    }

    /// <summary>
    /// The entries KVM_GET_MSRS reads (with their values) or KVM_SET_MSRS takes. Both stop at the first MSR they refuse
    /// and return how many came before it: that one is dropped and the call goes on after it, so a list costs one
    /// ioctl per refused MSR plus one, not one per MSR.
    /// </summary>
    private static MsrEntry[] Processed(Vcpu vcpu, MsrEntry[] entries, bool set)
    {
        var kept = new List<MsrEntry>(entries.Length);
        for (int start = 0; start < entries.Length;)
        {
            Span<MsrEntry> rest = entries.AsSpan(start);
            int done = set ? vcpu.SetMsrs(rest) : vcpu.GetMsrs(rest);
            foreach (MsrEntry msr in rest[..done]) kept.Add(msr);
            start += done + 1;
        }
        return [.. kept];
    }
}
