// SPDX-License-Identifier: MIT
using KvmSharp.Abi;

namespace KvmSharp.Emulation.X86;

/// <summary>
/// A vCPU's guest CPUID (vcpu->arch.cpuid_entries / cpuid_nent, arch/x86/kvm/cpuid.c) and whether the vCPU has entered
/// the guest (kvm_vcpu_has_run: last_vmentry_cpu != -1), which freezes the table. The CPUID instruction reads it through
/// <see cref="Emulate"/>. Guarded by the vCPU mutex (ioctls) or run by the vCPU's own KVM_RUN.
/// </summary>
internal sealed class CpuidTable
{
    private const uint Sig = KvmCpuid.KVM_CPUID_FLAG_SIGNIFCANT_INDEX;

    // CPUID.1 bits kvm_update_cpuid_runtime keeps in step with the vCPU's state.
    private const uint EcxOsxsave = 1u << 27;
    private const uint EdxApic = 1u << 9;
    private const ulong Cr4Osxsave = 1UL << 18;
    private const ulong ApicBaseEnable = 1UL << 11;
    private const uint XsavecOrXsaves = (1u << 1) | (1u << 3);

    private kvm_cpuid_entry2[] _entries = [];

    /// <summary>The table, in the order KVM_SET_CPUID2 gave it.</summary>
    public ReadOnlySpan<kvm_cpuid_entry2> Entries => _entries;

    /// <summary>
    /// How many KVM_SET_CPUID2 calls succeeded (identical tables after a run included): what reruns
    /// kvm_vcpu_after_set_cpuid's side effects, such as the local APIC's version register, tells them apart by.
    /// </summary>
    public int Generation { get; private set; }

    /// <summary>kvm_vcpu_has_run(): the vCPU entered the guest at least once.</summary>
    public bool HasRun { get; set; }

    /// <summary>
    /// kvm_set_cpuid: before the first entry, the new table replaces the old after kvm_check_cpuid; afterwards only an
    /// identical table is accepted (kvm_cpuid_check_equal). 0 or -errno.
    /// </summary>
    public long Set(kvm_cpuid_entry2[] incoming, X86Cpu cpu)
    {
        // kvm_set_cpuid: "if (kvm_vcpu_has_run(vcpu)) { r = kvm_cpuid_check_equal(vcpu, e2, nent); ... }" —
        // check_equal first applies kvm_update_cpuid_runtime to the incoming entries, then compares nent and every
        // field but the padding.
        if (HasRun)
        {
            UpdateRuntime(incoming, cpu);
            if (incoming.Length != _entries.Length) return Vfs.Err.EINVAL;
            for (int i = 0; i < incoming.Length; i++)
            {
                ref readonly var a = ref incoming[i];
                ref readonly var b = ref _entries[i];
                if (a.function != b.function || a.index != b.index || a.flags != b.flags ||
                    a.eax != b.eax || a.ebx != b.ebx || a.ecx != b.ecx || a.edx != b.edx)
                    return Vfs.Err.EINVAL;
            }
            _entries = incoming; // the incoming copy is kept ("goto success" frees the old one)
            Generation++;
            return 0;
        }
        long r = Check(incoming);
        if (r != 0) return r;
        UpdateRuntime(incoming, cpu); // kvm_vcpu_after_set_cpuid → kvm_update_cpuid_runtime
        _entries = incoming;
        // kvm_vcpu_after_set_cpuid → kvm_update_pv_runtime: "if (best) vcpu->arch.pv_cpuid.features = best->eax;"
        if (FindKvmFeatures(incoming) is uint pvFeatures) PvFeatures = pvFeatures;
        Generation++;
        return 0;
    }

    /// <summary>vcpu->arch.pv_cpuid.enforce: KVM_CAP_ENFORCE_PV_FEATURE_CPUID on this vCPU (off at creation).</summary>
    public bool PvEnforce { get; set; }

    /// <summary>vcpu->arch.pv_cpuid.features: EAX of KVM_CPUID_FEATURES at the last KVM_SET_CPUID2 that had it.</summary>
    public uint PvFeatures { get; private set; }

    /// <summary>cpuid.h guest_pv_has: true unless enforcement is on and the KVM_FEATURE_* bit is clear.</summary>
    public bool PvHas(int kvmFeature) => !PvEnforce || (PvFeatures & (1u << kvmFeature)) != 0;

    /// <summary>
    /// kvm_get_hypervisor_cpuid(vcpu, KVM_SIGNATURE) and kvm_find_kvm_cpuid_features: the first base 0x40000000 +
    /// n·0x100 (below 0x40010000) whose EBX ECX EDX are KVM's signature, then its leaf base | KVM_CPUID_FEATURES.
    /// </summary>
    private static uint? FindKvmFeatures(kvm_cpuid_entry2[] entries)
    {
        for (uint b = 0x4000_0000; b < 0x4001_0000; b += 0x100)
        {
            int i = Find(entries, b, index: null);
            if (i < 0) continue;
            // "KVMKVMKVM\0\0\0" in EBX, ECX, EDX.
            if (entries[i].ebx != 0x4b4d_564b || entries[i].ecx != 0x564b_4d56 || entries[i].edx != 0x4d) continue;
            int f = Find(entries, b | 1, index: null);
            return f < 0 ? null : entries[f].eax;
        }
        return null;
    }

    /// <summary>The table for KVM_GET_CPUID2, with the runtime bits brought up to date first.</summary>
    public ReadOnlySpan<kvm_cpuid_entry2> Current(X86Cpu cpu)
    {
        UpdateRuntime(_entries, cpu);
        return _entries;
    }

    /// <summary>
    /// kvm_check_cpuid: CPUID.0x80000008 EAX[15:8] (virtual-address width) must be 0, 48 or 57, else -EINVAL; dynamic
    /// XSAVE features (XFEATURE_MASK_USER_DYNAMIC = XTILE_DATA, bit 18) in CPUID.0xD.0 need a prior
    /// ARCH_REQ_XCOMP_GUEST_PERM, which the emulator does not model: fpu_enable_guest_xfd_features → -EPERM.
    /// </summary>
    private static long Check(kvm_cpuid_entry2[] entries)
    {
        int i = Find(entries, 0x8000_0008, index: null);
        if (i >= 0)
        {
            uint vaddrBits = (entries[i].eax >> 8) & 0xff;
            if (vaddrBits is not (48 or 57 or 0)) return Vfs.Err.EINVAL;
        }
        i = Find(entries, 0xd, index: 0);
        if (i >= 0 && (entries[i].eax & (1u << 18)) != 0) return Vfs.Err.EPERM;
        return 0;
    }

    /// <summary>
    /// kvm_update_cpuid_runtime: CPUID.1 ECX.OSXSAVE follows CR4.OSXSAVE and EDX.APIC follows IA32_APIC_BASE.EN;
    /// CPUID.0xD.0 EBX (and 0xD.1 EBX with XSAVEC/XSAVES) is the XSAVE size for the current XCR0.
    /// </summary>
    private static void UpdateRuntime(kvm_cpuid_entry2[] entries, X86Cpu cpu)
    {
        int i = Find(entries, 1, index: null);
        if (i >= 0)
        {
            ref var e = ref entries[i];
            e.ecx = (cpu.Sregs.cr4 & Cr4Osxsave) != 0 ? e.ecx | EcxOsxsave : e.ecx & ~EcxOsxsave;
            e.edx = (cpu.Sregs.apic_base & ApicBaseEnable) != 0 ? e.edx | EdxApic : e.edx & ~EdxApic;
        }
        i = Find(entries, 0xd, index: 0);
        // xstate_required_size(vcpu->arch.xcr0, false / true): XCR0 changes with KVM_SET_XCRS and the guest's XSETBV.
        if (i >= 0) entries[i].ebx = cpu.Model.XstateSize(cpu.State.Xcr0, compacted: false);
        i = Find(entries, 0xd, index: 1);
        if (i >= 0 && (entries[i].eax & XsavecOrXsaves) != 0) entries[i].ebx = cpu.Model.XstateSize(cpu.State.Xcr0, compacted: true);
    }

    /// <summary>
    /// cpuid_entry2_find: the first entry with the function whose index is not significant or equals
    /// <paramref name="index"/>; a null index (KVM_CPUID_INDEX_NOT_SIGNIFICANT, KVM's own lookups) takes the first
    /// entry with the function. -1 when there is none.
    /// </summary>
    private static int Find(ReadOnlySpan<kvm_cpuid_entry2> entries, uint function, uint? index)
    {
        for (int i = 0; i < entries.Length; i++)
        {
            ref readonly var e = ref entries[i];
            if (e.function != function) continue;
            if ((e.flags & Sig) == 0 || index is null || e.index == index) return i;
        }
        return -1;
    }

    /// <summary>
    /// kvm_cpuid (exact_only = false), what the CPUID instruction returns for EAX = <paramref name="function"/>, ECX =
    /// <paramref name="index"/>. With no table every leaf reads 0 (observed on this host: a vCPU without
    /// KVM_SET_CPUID2 answers 0 to leaves 0, 1 and 0x40000000).
    /// </summary>
    public (uint Eax, uint Ebx, uint Ecx, uint Edx) Emulate(uint function, uint index, X86Cpu cpu)
    {
        // "if (vcpu->arch.cpuid_dynamic_bits_dirty) kvm_update_cpuid_runtime(vcpu)".
        UpdateRuntime(_entries, cpu);
        int i = Find(_entries, function, index);
        if (i < 0) i = OutOfRange(ref function, index);
        if (i >= 0)
        {
            ref readonly var e = ref _entries[i];
            return (e.eax, e.ebx, e.ecx, e.edx);
        }
        // "When leaf 0BH or 1FH is defined, CL is pass-through and EDX is always the x2APIC ID, even for undefined
        // subleaves. Index 1 will exist iff the leaf is implemented" — after the max-basic redirection, so a leaf
        // above the maximum that lands on 0xb behaves so too (observed on this host: CPUID(0xc, 3) with max basic 0xb).
        if (function is 0xb or 0x1f)
        {
            int one = Find(_entries, function, 1);
            if (one >= 0) return (0, 0, index & 0xff, _entries[one].edx);
        }
        return (0, 0, 0, 0);
    }

    /// <summary>
    /// get_out_of_range_cpuid_entry: on a non-AMD/Hygon guest vendor, a function above its class's maximum (basic,
    /// 0x4000xx00 hypervisor ranges, 0x80000000 extended, 0xc0000000 Centaur) reads the max basic leaf, with the
    /// original index. Returns the entry, -1 when none; updates <paramref name="function"/> to the max basic leaf.
    /// </summary>
    private int OutOfRange(ref uint function, uint index)
    {
        int basic = Find(_entries, 0, index: null);
        if (basic < 0) return -1;
        ref readonly var b = ref _entries[basic];
        if (IsAmdOrHygon(b.ebx, b.ecx, b.edx)) return -1;
        uint classFn = function is >= 0x4000_0000 and <= 0x4fff_ffff ? function & 0xffff_ff00
            : function >= 0xc000_0000 ? 0xc000_0000
            : function & 0x8000_0000;
        int cls = Find(_entries, classFn, index: null);
        if (cls >= 0 && function <= _entries[cls].eax) return -1;
        function = b.eax;
        return Find(_entries, b.eax, index);
    }

    /// <summary>
    /// vcpu->arch.maxphyaddr (cpuid_query_maxphyaddr, at creation and KVM_SET_CPUID2): CPUID.0x80000008 EAX[7:0] when
    /// leaf 0x80000000 reports it (EAX &gt;= 0x80000008) and it is in the table, else 36.
    /// </summary>
    public int MaxPhyAddr
    {
        get
        {
            int i = Find(_entries, 0x8000_0000, index: null);
            if (i < 0 || _entries[i].eax < 0x8000_0008) return X86Consts.DefaultMaxPhyAddr;
            i = Find(_entries, 0x8000_0008, index: null);
            return i < 0 ? X86Consts.DefaultMaxPhyAddr : (int)(_entries[i].eax & 0xff);
        }
    }

    /// <summary>
    /// guest_cpu_cap_has(vcpu, X86_FEATURE_TSC_ADJUST): CPUID.(7,0).EBX bit 1 in the vCPU's table (KVM offers it:
    /// cpuid.c kvm_set_cpu_caps EMULATED_F(TSC_ADJUST)); false without KVM_SET_CPUID2.
    /// </summary>
    public bool HasTscAdjust
    {
        get
        {
            int i = Find(_entries, 7, 0);
            return i >= 0 && (_entries[i].ebx & (1u << 1)) != 0;
        }
    }

    /// <summary>
    /// guest_cpu_cap_has(vcpu, X86_FEATURE_RDTSCP): CPUID.80000001H:EDX bit 27 in the vCPU's table; false without
    /// KVM_SET_CPUID2. The emulator answers as upstream KVM on SVM hardware that has RDTSCP (kvm_cpu_caps keep the bit,
    /// so guest_cpu_cap_has is the guest's CPUID); kvm_pvm's caps lack it (HostDeviations.KvmPvmWithoutTscAuxInstructions).
    /// </summary>
    public bool HasRdtscp
    {
        get
        {
            int i = Find(_entries, 0x8000_0001, index: null);
            return i >= 0 && (_entries[i].edx & (1u << 27)) != 0;
        }
    }

    /// <summary>
    /// guest_cpu_cap_has(vcpu, X86_FEATURE_RDPID): CPUID.(7,0):ECX bit 22 in the vCPU's table; false without
    /// KVM_SET_CPUID2 (as <see cref="HasRdtscp"/>: the caps of a host with RDTSCP and RDPID).
    /// </summary>
    public bool HasRdpid
    {
        get
        {
            int i = Find(_entries, 7, 0);
            return i >= 0 && (_entries[i].ecx & (1u << 22)) != 0;
        }
    }

    /// <summary>CPUID.80000001H:EDX[29] (X86_FEATURE_LM) in the vCPU's table; false without KVM_SET_CPUID2.</summary>
    public bool HasLongMode => Has80000001Edx(29);

    /// <summary>CPUID.80000001H:EDX[20] (X86_FEATURE_NX) in the vCPU's table; false without KVM_SET_CPUID2.</summary>
    public bool HasNx => Has80000001Edx(20);

    private bool Has80000001Edx(int bit)
    {
        int i = Find(_entries, 0x8000_0001, index: null);
        return i >= 0 && (_entries[i].edx & (1u << bit)) != 0;
    }

    /// <summary>CPUID.80000001H:EDX[26] (X86_FEATURE_GBPAGES, 1 GiB pages) in the vCPU's table; false without KVM_SET_CPUID2.</summary>
    public bool HasGbPages
    {
        get
        {
            int i = Find(_entries, 0x8000_0001, index: null);
            return i >= 0 && (_entries[i].edx & (1u << 26)) != 0;
        }
    }

    /// <summary>
    /// vcpu->arch.is_amd_compatible (guest_cpuid_is_amd_or_hygon, set by kvm_vcpu_after_set_cpuid): CPUID.0's vendor is
    /// AMD or Hygon. guest_cpuid_is_intel_compatible is its negation, so a vCPU without a table is Intel-compatible.
    /// </summary>
    public bool IsAmdCompatible
    {
        get
        {
            int i = Find(_entries, 0, index: null);
            return i >= 0 && IsAmdOrHygon(_entries[i].ebx, _entries[i].ecx, _entries[i].edx);
        }
    }

    /// <summary>is_guest_vendor_amd ("AuthenticAMD", "AMDisbetter!") and is_guest_vendor_hygon ("HygonGenuine").</summary>
    internal static bool IsAmdOrHygon(uint ebx, uint ecx, uint edx) =>
        (ebx == 0x6874_7541 && ecx == 0x444d_4163 && edx == 0x6974_6e65) ||
        (ebx == 0x6944_4d41 && ecx == 0x2172_6574 && edx == 0x7465_6273) ||
        (ebx == 0x6f67_7948 && ecx == 0x656e_6975 && edx == 0x6e65_476e);
}
