// SPDX-License-Identifier: MIT
using System.Runtime.InteropServices;
using KvmSharp.Abi;
using KvmSharp.Memory;

namespace KvmSharp;

/// <summary>
/// What KVM_TDX_CAPABILITIES reports: the TD attributes and XFAM bits KVM supports and the CPUID leaves whose bits
/// userspace may configure (a bit set = configurable).
/// </summary>
/// <param name="SupportedAttributes">TD attribute bits KVM_TDX_INIT_VM accepts.</param>
/// <param name="SupportedXfam">XFAM (extended feature) bits KVM_TDX_INIT_VM accepts.</param>
/// <param name="UserTdvmcallInfoR11">TDVMCALLs KVM forwards to userspace (GetTdVmCallInfo leaf 1, R11).</param>
/// <param name="ConfigurableCpuid">The configurable CPUID leaves; CPUID.0x80000008.EAX[23:16] selects the GPAW.</param>
public sealed record TdxCapabilities(ulong SupportedAttributes, ulong SupportedXfam, ulong UserTdvmcallInfoR11,
    IReadOnlyList<CpuidEntry> ConfigurableCpuid)
{
    /// <summary>
    /// A CPUID configuration for KVM_TDX_INIT_VM: every configurable leaf with all its configurable bits, and the
    /// guest physical address width <paramref name="gpaw"/> (48 or 52) in CPUID.0x80000008.EAX[23:16].
    /// </summary>
    public IReadOnlyList<CpuidEntry> CpuidWithGpaw(int gpaw = 48) =>
        [.. ConfigurableCpuid.Select(e => e.Function == 0x8000_0008 ? e with { Eax = (e.Eax & ~0x00ff_0000u) | ((uint)gpaw & 0xff) << 16 } : e)];
}

/// <summary>
/// The TDX launch flow of a <see cref="VmType.Tdx"/> VM (Documentation/virt/kvm/x86/intel-tdx.rst):
/// <see cref="GetCapabilities"/>, <see cref="InitVm"/> before any vCPU, then per vCPU (created after InitVm)
/// KVM_SET_CPUID2 with x2APIC and <see cref="InitVcpu"/>, <see cref="InitMemRegion"/> for the initial image
/// (private guest_memfd memory), and <see cref="FinalizeVm"/>; only then does KVM_RUN accept the vCPUs (EINVAL before).
/// A TD's vCPU state is protected from its creation: its registers cannot be read or set.
/// </summary>
/// <remarks>Failures throw <see cref="TdxCommandException"/> carrying kvm_tdx_cmd.hw_error.</remarks>
public sealed class TdxLaunch
{
    private const int MaxCpuidEntries = 256;

    /// <summary>A launch of <paramref name="vm"/>.</summary>
    public TdxLaunch(Vm vm)
    {
        ArgumentNullException.ThrowIfNull(vm);
        Vm = vm;
    }

    /// <summary>The TD.</summary>
    public Vm Vm { get; }

    /// <summary>TDX_TD_ATTR_SEPT_VE_DISABLE: EPT violations on pending pages are not turned into #VE.</summary>
    public const ulong AttributeSeptVeDisable = 1UL << 28;

    /// <summary>KVM_TDX_CAPABILITIES (VM fd).</summary>
    public TdxCapabilities GetCapabilities()
    {
        int headerSize = Marshal.SizeOf<kvm_tdx_capabilities>();
        for (int capacity = 16; ; capacity *= 2)
        {
            var caps = new kvm_tdx_capabilities();
            caps.cpuid.nent = (uint)capacity;
            var buffer = CocoCall.Pin(caps, capacity * CpuidEntry.EntrySize);
            var cmd = new kvm_tdx_cmd { id = KvmMemoryEncrypt.KVM_TDX_CAPABILITIES, data = buffer.Address };
            long rc = CocoCall.Tdx(Vm, null, ref cmd);
            GC.KeepAlive(buffer);
            // E2BIG does not say how many entries are needed: grow up to KVM_MAX_CPUID_ENTRIES.
            if (rc == -(long)Kernel.Errno.E2BIG && capacity < MaxCpuidEntries) continue;
            Check(rc, "KVM_TDX_CAPABILITIES", cmd.hw_error, $"nent={capacity}");
            caps = CocoCall.Read<kvm_tdx_capabilities>(buffer);
            var entries = MemoryMarshal.Cast<byte, kvm_cpuid_entry2>(buffer.Span[headerSize..])[..(int)caps.cpuid.nent];
            var list = new List<CpuidEntry>(entries.Length);
            foreach (var e in entries) list.Add(CpuidEntry.FromNative(e));
            return new TdxCapabilities(caps.supported_attrs, caps.supported_xfam, caps.user_tdvmcallinfo_1_r11, list);
        }
    }

    /// <summary>
    /// KVM_TDX_INIT_VM: configures the TD (attributes, XFAM, the CPUID the TDX module enforces — only leaves
    /// <see cref="TdxCapabilities.ConfigurableCpuid"/> lists, one of them 0x80000008 with the GPAW — and the optional
    /// 48-byte SHA-384 values MRCONFIGID, MROWNER, MROWNERCONFIG). Before any vCPU (EBUSY) and once (EINVAL).
    /// </summary>
    public void InitVm(IReadOnlyList<CpuidEntry> cpuid, ulong attributes = 0, ulong xfam = 0,
        ReadOnlySpan<byte> mrConfigId = default, ReadOnlySpan<byte> mrOwner = default, ReadOnlySpan<byte> mrOwnerConfig = default)
    {
        ArgumentNullException.ThrowIfNull(cpuid);
        var init = new kvm_tdx_init_vm { attributes = attributes, xfam = xfam };
        init.cpuid.nent = (uint)cpuid.Count;
        Digest(mrConfigId, init.mrconfigid, nameof(mrConfigId));
        Digest(mrOwner, init.mrowner, nameof(mrOwner));
        Digest(mrOwnerConfig, init.mrownerconfig, nameof(mrOwnerConfig));
        var buffer = CocoCall.Pin(init, cpuid.Count * CpuidEntry.EntrySize);
        var entries = MemoryMarshal.Cast<byte, kvm_cpuid_entry2>(buffer.Span[Marshal.SizeOf<kvm_tdx_init_vm>()..]);
        for (int i = 0; i < cpuid.Count; i++) entries[i] = cpuid[i].ToNative();
        Issue(null, KvmMemoryEncrypt.KVM_TDX_INIT_VM, 0, buffer, $"attributes=0x{attributes:X} xfam=0x{xfam:X} nent={cpuid.Count}");
    }

    private static void Digest(ReadOnlySpan<byte> value, Span<ulong> field, string name)
    {
        if (value.IsEmpty) return;
        if (value.Length != 48) throw new ArgumentException("a SHA-384 digest is 48 bytes", name);
        value.CopyTo(MemoryMarshal.AsBytes(field));
    }

    /// <summary>
    /// KVM_TDX_INIT_VCPU: initializes <paramref name="vcpu"/> (x2APIC mode; the guest CPUID must offer x2APIC, else
    /// EINVAL); <paramref name="rcx"/> reaches the guest's firmware in RCX. Once per vCPU.
    /// </summary>
    public void InitVcpu(Vcpu vcpu, ulong rcx = 0)
    {
        ArgumentNullException.ThrowIfNull(vcpu);
        Issue(vcpu, KvmMemoryEncrypt.KVM_TDX_INIT_VCPU, 0, null, $"rcx=0x{rcx:X}", immediate: rcx);
    }

    /// <summary>
    /// KVM_TDX_INIT_MEM_REGION: adds <paramref name="pages"/> 4 KiB pages at private <paramref name="gpa"/> from host
    /// memory at <paramref name="source"/> to the TD, extending its measurement when <paramref name="measure"/>. Through
    /// an initialized vCPU, before <see cref="FinalizeVm"/>.
    /// </summary>
    public void InitMemRegion(Vcpu vcpu, ulong gpa, nint source, ulong pages, bool measure = true)
    {
        ArgumentNullException.ThrowIfNull(vcpu);
        var buffer = CocoCall.Pin(new kvm_tdx_init_mem_region { source_addr = (ulong)source, gpa = gpa, nr_pages = pages });
        Issue(vcpu, KvmMemoryEncrypt.KVM_TDX_INIT_MEM_REGION, measure ? KvmMemoryEncrypt.KVM_TDX_MEASURE_MEMORY_REGION : 0, buffer,
            $"gpa=0x{gpa:X} nr_pages={pages}");
    }

    /// <summary>KVM_TDX_FINALIZE_VM: ends the measurement; the vCPUs can run, the initial memory is fixed.</summary>
    public void FinalizeVm() => Issue(null, KvmMemoryEncrypt.KVM_TDX_FINALIZE_VM, 0, null, "");

    /// <summary>KVM_TDX_GET_CPUID: the CPUID the TD's vCPU <paramref name="vcpu"/> sees (before <see cref="FinalizeVm"/>).</summary>
    public IReadOnlyList<CpuidEntry> GetCpuid(Vcpu vcpu)
    {
        ArgumentNullException.ThrowIfNull(vcpu);
        var header = new kvm_cpuid2 { nent = MaxCpuidEntries };
        var buffer = CocoCall.Pin(header, MaxCpuidEntries * CpuidEntry.EntrySize);
        Issue(vcpu, KvmMemoryEncrypt.KVM_TDX_GET_CPUID, 0, buffer, $"nent={MaxCpuidEntries}");
        header = CocoCall.Read<kvm_cpuid2>(buffer);
        var entries = MemoryMarshal.Cast<byte, kvm_cpuid_entry2>(buffer.Span[CpuidEntry.HeaderSize..])[..(int)header.nent];
        var list = new List<CpuidEntry>(entries.Length);
        foreach (var e in entries) list.Add(CpuidEntry.FromNative(e));
        return list;
    }

    private void Issue(Vcpu? vcpu, uint id, uint flags, PinnedArray<byte>? data, string request, ulong immediate = 0)
    {
        var cmd = new kvm_tdx_cmd { id = id, flags = flags, data = data?.Address ?? immediate };
        long rc = CocoCall.Tdx(Vm, vcpu, ref cmd);
        GC.KeepAlive(data);
        Check(rc, Name(id), cmd.hw_error, request);
    }

    private static void Check(long rc, string command, ulong hwError, string request)
    {
        if (KvmCall.IsError(rc)) throw new TdxCommandException(command, (int)-rc, hwError, request);
    }

    private static string Name(uint id) => id switch
    {
        KvmMemoryEncrypt.KVM_TDX_INIT_VM => "KVM_TDX_INIT_VM",
        KvmMemoryEncrypt.KVM_TDX_INIT_VCPU => "KVM_TDX_INIT_VCPU",
        KvmMemoryEncrypt.KVM_TDX_INIT_MEM_REGION => "KVM_TDX_INIT_MEM_REGION",
        KvmMemoryEncrypt.KVM_TDX_FINALIZE_VM => "KVM_TDX_FINALIZE_VM",
        KvmMemoryEncrypt.KVM_TDX_GET_CPUID => "KVM_TDX_GET_CPUID",
        _ => $"KVM_MEMORY_ENCRYPT_OP(tdx id {id})",
    };
}
