// SPDX-License-Identifier: MIT
using KvmSharp.Abi.Arm64;
using KvmSharp.Arm64;
using KvmSharp.Vmm.GuestAbi;

namespace KvmSharp.Vmm.Arch.Arm64;

/// <summary>
/// The boot of an arm64 micro-VM, the way tools/testing/selftests/kvm/lib/arm64/processor.c sets up a vCPU before
/// paging: KVM_ARM_PREFERRED_TARGET, KVM_ARM_VCPU_INIT with PSCI 0.2 (so PSCI SYSTEM_OFF is a KVM_EXIT_SYSTEM_EVENT),
/// VBAR_EL1 = the VMM's vector table, and per call PC = the trampoline, SP_EL1 = the stack top, PSTATE = EL1h with
/// DAIF masked, all through KVM_SET_ONE_REG; and, as processor.c's aarch64_vcpu_setup does before the guest runs, the
/// stage-1 MMU turned on over the identity tables the host wrote (<see cref="Arm64PageTables"/>): MAIR_EL1, TCR_EL1,
/// TTBR0_EL1, then SCTLR_EL1 with M, C and I set (<see cref="Layout"/>). An SVE micro-VM
/// (<see cref="MicroVmOptions.Arm64SveVectorBits"/>) adds KVM_ARM_VCPU_SVE to the features, its vector lengths and
/// KVM_ARM_VCPU_FINALIZE after the first init (the order of Documentation/virt/kvm/api.rst, KVM_ARM_VCPU_FINALIZE),
/// and CPACR_EL1.ZEN and ZCR_EL1.LEN to the boot registers.
/// </summary>
internal sealed class Arm64Boot
{
    private readonly kvm_vcpu_init _init;
    // SVE (MicroVmOptions.Arm64SveVectorBits): the vector length in quadwords, 0 without; and whether this micro-VM's
    // one vCPU was finalized (its first KVM_ARM_VCPU_INIT is followed by KVM_REG_ARM64_SVE_VLS and the finalize).
    private readonly int _sveVq;
    private bool _sveFinalized;
    // Pointer authentication (an image built with -mbranch-protection=pac-ret on a kernel that offers it): the ten
    // key registers' values, drawn once per micro-VM as Linux draws a process's keys at exec
    // (arch/arm64/kernel/pointer_auth.c ptrauth_keys_init_user); null without.
    private readonly ulong[]? _pointerAuthKeys;

    private Arm64Boot(kvm_vcpu_init init, int sveVq, bool pointerAuth)
    {
        _init = init;
        _sveVq = sveVq;
        if (pointerAuth)
        {
            _pointerAuthKeys = new ulong[PointerAuthKeyRegisters.Length];
            System.Security.Cryptography.RandomNumberGenerator.Fill(System.Runtime.InteropServices.MemoryMarshal.AsBytes(_pointerAuthKeys.AsSpan()));
        }
    }

    /// <summary>The key registers, in <see cref="_pointerAuthKeys"/>' order.</summary>
    private static readonly ulong[] PointerAuthKeyRegisters =
    [
        KvmArm64PtrAuth.APIAKEYLO_EL1, KvmArm64PtrAuth.APIAKEYHI_EL1, KvmArm64PtrAuth.APIBKEYLO_EL1, KvmArm64PtrAuth.APIBKEYHI_EL1,
        KvmArm64PtrAuth.APDAKEYLO_EL1, KvmArm64PtrAuth.APDAKEYHI_EL1, KvmArm64PtrAuth.APDBKEYLO_EL1, KvmArm64PtrAuth.APDBKEYHI_EL1,
        KvmArm64PtrAuth.APGAKEYLO_EL1, KvmArm64PtrAuth.APGAKEYHI_EL1,
    ];

    /// <summary>
    /// SCTLR_EL1.EnIA (31), EnIB (30), EnDA (27), EnDB (13): the PAC and AUT instructions of each key take effect (Arm
    /// ARM D19.2.118; clear, they are NOPs in the hint space), as Linux sets them for a process (SCTLR_USER_MASK).
    /// </summary>
    private const ulong SctlrPointerAuth = (1UL << 31) | (1UL << 30) | (1UL << 27) | (1UL << 13);

    /// <summary>Whether the vCPU has pointer authentication, with keys and SCTLR_EL1's enables set at every init.</summary>
    public bool PointerAuth => _pointerAuthKeys is not null;

    /// <summary>
    /// KVM_ARM_PREFERRED_TARGET of <paramref name="vm"/>, with PSCI 0.2 added, and with KVM_ARM_VCPU_SVE when
    /// <paramref name="sveBits"/> is set: a kernel without SVE (arm.c kvm_vm_ioctl_check_extension "case
    /// KVM_CAP_ARM_SVE: r = system_supports_sve();" — whose KVM_ARM_VCPU_INIT would refuse the feature with EINVAL:
    /// arm.c kvm_vcpu_init_check_features against system_supported_vcpu_features) is refused here, naming the length.
    /// </summary>
    public static Arm64Boot Open(Vm vm, int? sveBits = null, bool pointerAuth = false)
    {
        kvm_vcpu_init init = vm.PreferredTarget();
        init.features[0] |= 1u << KvmArm64Constants.KVM_ARM_VCPU_PSCI_0_2;
        // Address and generic authentication together, or neither (arm.c kvm_vcpu_init_check_features:
        // "vcpu_has_feature(ADDRESS) != vcpu_has_feature(GENERIC)" is EINVAL), and only where the kernel offers both.
        pointerAuth = pointerAuth && vm.CheckExtension(KvmArm64PtrAuth.KVM_CAP_ARM_PTRAUTH_ADDRESS) > 0 &&
            vm.CheckExtension(KvmArm64PtrAuth.KVM_CAP_ARM_PTRAUTH_GENERIC) > 0;
        if (pointerAuth)
            init.features[0] |= (1u << KvmArm64Constants.KVM_ARM_VCPU_PTRAUTH_ADDRESS) | (1u << KvmArm64Constants.KVM_ARM_VCPU_PTRAUTH_GENERIC);
        if (sveBits is not int bits) return new Arm64Boot(init, 0, pointerAuth);
        if (vm.CheckExtension(KvmArm64Sve.KVM_CAP_ARM_SVE) <= 0)
        {
            throw new MicroVmSveException(bits, [],
                $"MicroVmOptions.Arm64SveVectorBits = {bits}: this kernel offers no SVE vCPU (KVM_CAP_ARM_SVE is 0: the host CPU has no SVE)");
        }
        init.features[0] |= 1u << KvmArm64Constants.KVM_ARM_VCPU_SVE;
        return new Arm64Boot(init, bits / MicroVmOptions.MinSveVectorBits, pointerAuth);
    }

    /// <summary>
    /// KVM_ARM_VCPU_INIT (again, for a reset: arm.c kvm_arch_vcpu_ioctl_vcpu_init resets an initialized vCPU to its
    /// reset state when given the same target and features — for an SVE vCPU that zeroes Z, P and FFR, reset.c
    /// kvm_reset_vcpu → kvm_vcpu_reset_sve —; the first one of an SVE vCPU is followed by its vector lengths and the
    /// finalize, <see cref="ConfigureSve"/>), then VBAR_EL1 and CPACR_EL1.FPEN = 0b11 (KVM resets
    /// CPACR_EL1 to 0, which traps every FP/SIMD instruction at EL1 — Arm ARM D19.2.30 CPACR_EL1 — while compiled C
    /// uses them as soon as the compiler may: GUEST-ABI.md, "arm64 C guests") — with SVE also ZEN = 0b11
    /// (<see cref="CpacrZen"/>) and ZCR_EL1.LEN = the length's quadwords − 1 (KVM resets ZCR_EL1 to 0, the
    /// 128-bit length: sys_regs.c "{ SYS_DESC(SYS_ZCR_EL1), NULL, reset_val, ZCR_EL1, 0, .visibility = sve_visibility }") —,
    /// then the MMU: MAIR_EL1, TCR_EL1 and
    /// TTBR0_EL1 (<see cref="Layout.EntryMair"/>, <see cref="Layout.EntryTcr"/>, <see cref="Layout.TranslationTables"/>),
    /// and SCTLR_EL1 = KVM's reset value (read back, so its RES1 bits are kept: sys_regs.c resets it to 0x00C50078)
    /// with M, C and I set and A clear (<see cref="Layout.EntrySctlrBits"/>). The tables must be in memory already
    /// (<see cref="WriteBootState"/>); a Reset rewrites both.
    /// </summary>
    public void InitVcpu(Vcpu vcpu)
    {
        ResetVcpu(vcpu);
        vcpu.SetOneReg(KvmArm64SysRegs.VBAR_EL1, Layout.Vectors);
        vcpu.SetOneReg(KvmArm64SysRegs.CPACR_EL1, _sveVq == 0 ? Layout.EntryCpacr : Layout.EntryCpacr | CpacrZen);
        // ZCR_EL1.LEN (bits 3:0): the guest's vector length is (LEN + 1) × 128 bits, capped by ZCR_EL2 — which KVM sets
        // from the vCPU's sve_max_vl — and rounded down to one the CPU implements (Arm ARM D19.2.163 ZCR_EL1,
        // "Constraining the vector length").
        if (_sveVq != 0) vcpu.SetOneReg(KvmArm64Sve.ZCR_EL1, (ulong)(_sveVq - 1));
        vcpu.SetOneReg(KvmArm64SysRegs.MAIR_EL1, Layout.EntryMair);
        vcpu.SetOneReg(KvmArm64SysRegs.TCR_EL1, Layout.EntryTcr);
        vcpu.SetOneReg(KvmArm64SysRegs.TTBR0_EL1, Layout.TranslationTables);
        ulong sctlr = vcpu.GetOneReg(KvmArm64SysRegs.SCTLR_EL1);
        if (_pointerAuthKeys is not null)
        {
            for (int i = 0; i < PointerAuthKeyRegisters.Length; i++) vcpu.SetOneReg(PointerAuthKeyRegisters[i], _pointerAuthKeys[i]);
            sctlr |= SctlrPointerAuth;
        }
        vcpu.SetOneReg(KvmArm64SysRegs.SCTLR_EL1, (sctlr | Layout.EntrySctlrBits) & ~SctlrA);
    }

    private bool? _hasBti;

    /// <summary>
    /// Whether <paramref name="image"/>'s pages are mapped guarded: it was built for BTI
    /// (<see cref="Loader.BranchProtection.Bti"/>) and the vCPU has FEAT_BTI — as Linux maps such an executable's
    /// segments with PROT_BTI only when system_supports_bti() (arch/arm64/kernel/process.c arch_parse_elf_property,
    /// arch_elf_adjust_prot). Known after the vCPU's first <see cref="ResetVcpu"/>; false before it.
    /// </summary>
    public bool GuardsBranchTargets(Loader.GuestImage image) =>
        _hasBti == true && image.BranchProtection.HasFlag(Loader.BranchProtection.Bti);

    /// <summary>
    /// KVM_ARM_VCPU_INIT alone, with this micro-VM's target and features: every register back to its reset value, the
    /// first step of loading a snapshot's registers (Snapshots/Arm64VcpuState.cs), which then set VBAR, CPACR, the MMU …
    /// The first one of an SVE vCPU (at creation, or at the creation from a snapshot) also gives it its vector lengths
    /// and finalizes it (<see cref="ConfigureSve"/>).
    /// </summary>
    public void ResetVcpu(Vcpu vcpu)
    {
        vcpu.Init(_init);
        // ID_AA64PFR1_EL1.BT (bits 3:0): the VM's vCPUs have FEAT_BTI (read once, after the first init).
        _hasBti ??= (vcpu.GetOneReg(KvmArm64IdRegs.ID_AA64PFR1_EL1) & 0xF) >= 1;
        if (_sveVq != 0 && !_sveFinalized)
        {
            ConfigureSve(vcpu);
            _sveFinalized = true;
        }
    }

    /// <summary>
    /// The SVE set-up between a vCPU's first KVM_ARM_VCPU_INIT and its first run (Documentation/virt/kvm/api.rst,
    /// KVM_ARM_VCPU_INIT "KVM_ARM_VCPU_SVE", KVM_REG_ARM64_SVE_VLS and KVM_ARM_VCPU_FINALIZE): read the vector lengths
    /// the vCPU may have (guest.c get_sve_vls: every length the host implements up to kvm_sve_max_vl, set by reset.c
    /// kvm_vcpu_enable_sve at the init); refuse a length not among them; write back those up to the asked one — the
    /// kernel takes a set only when it holds every implemented length up to its largest ("Vector lengths supported
    /// by the host can't currently be hidden from the guest individually": guest.c set_sve_vls, EINVAL) and only
    /// before the finalize (EPERM after: "too late!") —; then KVM_ARM_VCPU_FINALIZE(KVM_ARM_VCPU_SVE) (reset.c
    /// kvm_arm_vcpu_finalize → kvm_vcpu_finalize_sve: sve_state allocated; until then KVM_RUN, KVM_GET_REG_LIST and the
    /// Z/P/FFR registers are refused with EPERM: arm.c kvm_arch_vcpu_ioctl_run, guest.c kvm_arm_num_regs / get_sve_reg).
    /// </summary>
    private void ConfigureSve(Vcpu vcpu)
    {
        ulong[] offered = vcpu.GetSveVectorLengths();
        int bits = _sveVq * MicroVmOptions.MinSveVectorBits;
        int word = (_sveVq - KvmArm64Sve.KVM_ARM64_SVE_VQ_MIN) / 64, bit = (_sveVq - KvmArm64Sve.KVM_ARM64_SVE_VQ_MIN) % 64;
        if ((offered[word] >> bit & 1) == 0)
        {
            int[] lengths = VectorBits(offered);
            throw new MicroVmSveException(bits, lengths,
                $"MicroVmOptions.Arm64SveVectorBits = {bits}: this kernel's vCPUs offer SVE vector lengths of {string.Join(", ", lengths)} bits (KVM_REG_ARM64_SVE_VLS), not {bits}");
        }
        var chosen = new ulong[KvmArm64Sve.KVM_ARM64_SVE_VLS_WORDS];
        for (int i = 0; i < chosen.Length; i++)
        {
            chosen[i] = i < word ? offered[i] : i == word ? offered[i] & (bit == 63 ? ulong.MaxValue : (2UL << bit) - 1) : 0;
        }
        vcpu.SetSveVectorLengths(chosen);
        vcpu.FinalizeSve();
    }

    /// <summary>The lengths in bits of a KVM_REG_ARM64_SVE_VLS bitmap (bit vq − 1 of the words: vq quadwords).</summary>
    public static int[] VectorBits(ReadOnlySpan<ulong> words)
    {
        var lengths = new List<int>();
        for (int i = 0; i < words.Length * 64; i++)
        {
            if ((words[i / 64] >> (i % 64) & 1) != 0) lengths.Add((i + KvmArm64Sve.KVM_ARM64_SVE_VQ_MIN) * MicroVmOptions.MinSveVectorBits);
        }
        return [.. lengths];
    }

    /// <summary>
    /// CPACR_EL1.ZEN (bits 17:16) = 0b11 for an SVE micro-VM: SVE instructions and registers not trapped at EL1 or EL0
    /// (Arm ARM D19.2.30 CPACR_EL1.ZEN; pseudocode AArch64.CheckSVEEnabled checks ZEN, then FPEN, so SVE needs both).
    /// KVM resets CPACR_EL1 to 0 (sys_regs.c), where every SVE instruction takes an SVE access trap (ESR_EL1.EC 0x19).
    /// Not in <see cref="Layout"/>: its constants are the guest header's twins (kvmsharp_guest.h KVMS_ARM64_*).
    /// </summary>
    private const ulong CpacrZen = 0x3_0000;

    /// <summary>SCTLR_EL1.A (bit 1): alignment checking of data accesses, kept off.</summary>
    private const ulong SctlrA = 1UL << 1;

    /// <summary>
    /// The registers of a call's start: the trampoline loads the arguments from the call region itself. A call that
    /// ended at an MMIO exit (a store to the exit or return port, an exception report …) left that exit pending: the
    /// next KVM_RUN would complete it first (arm.c kvm_arch_vcpu_ioctl_run → mmio.c kvm_handle_mmio_return: Rt of a
    /// load, and PC += 4 — one instruction past the trampoline's start). So it is completed now, by a KVM_RUN with
    /// immediate_exit set (which completes it and returns EINTR before entering the guest), and only then are the
    /// registers written.
    /// </summary>
    public static void EnterCall(Vcpu vcpu, bool mmioPending)
    {
        if (mmioPending)
        {
            vcpu.ImmediateExit = true;
            try
            {
                vcpu.Run();
            }
            finally
            {
                vcpu.ImmediateExit = false;
            }
        }
        vcpu.SetPc(Layout.Trampoline);
        vcpu.SetOneReg(KvmArm64Regs.SpEl1, Layout.StackTop);
        vcpu.SetOneReg(KvmArm64Regs.Pstate, Layout.EntryPstate);
    }

    /// <summary>
    /// Writes the translation tables (<see cref="Arm64PageTables"/>), the trampoline, the vector table (with its common
    /// handler) and the call region's magic and version (as X86_64.BootMemory does: a guest's kvms_abi_version() reads
    /// them) into fresh memory; the pages of <paramref name="guarded"/>'s segments guarded (<see cref="GuardsBranchTargets"/>).
    /// </summary>
    public static void WriteBootState(GuestMemory memory, IReadOnlyList<Loader.ImageSegment>? guarded = null)
    {
        Arm64PageTables.Write(memory, guarded);
        memory.Write(Layout.Trampoline, Arm64GuestCode.Trampoline());
        memory.Write(Layout.Vectors, Arm64GuestCode.Vectors());
        memory.Write(CallRegion.Address(CallRegion.Magic), CallRegion.MagicValue);
        memory.Write(CallRegion.Address(CallRegion.Version), CallRegion.VersionValue);
    }
}
