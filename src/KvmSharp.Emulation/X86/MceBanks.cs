// SPDX-License-Identifier: MIT
using KvmSharp.Emulation.Vfs;
using KvmSharp.X86;

namespace KvmSharp.Emulation.X86;

/// <summary>
/// A vCPU's machine-check state as arch/x86/kvm/x86.c keeps it (vcpu->arch.mcg_cap, mcg_status, mcg_ctl, mce_banks,
/// mci_ctl2_banks): the MSR rules of get_msr_mce / set_msr_mce and KVM_X86_SETUP_MCE (kvm_vcpu_ioctl_x86_setup_mce).
/// KVM_GET_MSR_INDEX_LIST lists only MCG_STATUS and MCG_CTL (emulated_msrs_all); the banks are per vCPU and
/// writable by the guest all the same. Checked on Linux 6.18 kvm_pvm (MceAndMtrrRules conformance cases).
/// </summary>
internal sealed class MceBanks
{
    /// <summary>x86.h KVM_MAX_MCE_BANKS: the banks a new vCPU has, the most KVM_X86_SETUP_MCE takes (KVM_CAP_MCE).</summary>
    public const int MaxBanks = 32;

    /// <summary>
    /// kvm_caps.supported_mce_cap: kvm_x86_vendor_init's MCG_CTL_P | MCG_SER_P; vmx adds LMCE_P and CMCI_P, svm
    /// (this host is AMD) nothing. KVM_X86_GET_MCE_CAP_SUPPORTED reports it (0x1000100 here).
    /// </summary>
    public const ulong SupportedCap = McgCap.CtlP | McgCap.SerP;

    /// <summary>MCI_CTL2_CMCI_EN | MCI_CTL2_CMCI_THRESHOLD_MASK: the IA32_MCi_CTL2 bits a write may set.</summary>
    private const ulong Ctl2Valid = (1UL << 30) | 0x7fff;

    /// <summary>vcpu->arch.mcg_cap: kvm_arch_vcpu_create sets KVM_MAX_MCE_BANKS (32 banks, no capability bits).</summary>
    public ulong Cap { get; private set; } = MaxBanks;

    private ulong _mcgStatus, _mcgCtl;

    /// <summary>vcpu->arch.mce_banks: CTL, STATUS, ADDR, MISC of each bank (kcalloc: 0 at creation).</summary>
    private readonly ulong[] _banks = new ulong[4 * MaxBanks];

    /// <summary>vcpu->arch.mci_ctl2_banks (kcalloc: 0 at creation).</summary>
    private readonly ulong[] _ctl2 = new ulong[MaxBanks];

    private uint BankCount => (uint)(Cap & McgCap.BankCountMask);

    /// <summary>
    /// kvm_get_msr_common's MCE cases (MCG_CAP, MCG_CTL, MCG_STATUS, MC0_CTL … MCx_CTL(KVM_MAX_MCE_BANKS) - 1,
    /// MC0_CTL2 … MCx_CTL2(KVM_MAX_MCE_BANKS) - 1); MSR_IA32_P5_MC_* are in MsrRules.
    /// </summary>
    public static bool IsMceMsr(uint index) =>
        index is MsrIndex.IA32_MCG_CAP or MsrIndex.IA32_MCG_STATUS or MsrIndex.IA32_MCG_CTL
        || index - MsrIndex.IA32_MC0_CTL < 4 * MaxBanks
        || index - MsrIndex.IA32_MC0_CTL2 < MaxBanks;

    /// <summary>x86.c get_msr_mce: 0 with the value, 1 when refused.</summary>
    public int Get(uint index, bool hostInitiated, out ulong data)
    {
        data = 0;
        switch (index)
        {
            case MsrIndex.IA32_MCG_CAP:
                data = Cap;
                return 0;
            case MsrIndex.IA32_MCG_CTL:
                // "if (!(mcg_cap & MCG_CTL_P) && !host) return 1".
                if ((Cap & McgCap.CtlP) == 0 && !hostInitiated) return 1;
                data = _mcgCtl;
                return 0;
            case MsrIndex.IA32_MCG_STATUS:
                data = _mcgStatus;
                return 0;
        }
        if (index - MsrIndex.IA32_MC0_CTL2 < MaxBanks)
        {
            // "if (msr > last_msr) return 1; if (!(mcg_cap & MCG_CMCI_P) && !host) return 1".
            uint bank = index - MsrIndex.IA32_MC0_CTL2;
            if (bank >= BankCount) return 1;
            if ((Cap & McgCap.CmciP) == 0 && !hostInitiated) return 1;
            data = _ctl2[bank];
            return 0;
        }
        uint offset = index - MsrIndex.IA32_MC0_CTL;
        if (offset >= 4 * BankCount) return 1;
        data = _banks[offset];
        return 0;
    }

    /// <summary>
    /// x86.c set_msr_mce (reached for MCG_STATUS, MCG_CTL and the bank ranges; a write of MCG_CAP is not a case of
    /// kvm_set_msr_common): 0 when written, 1 when refused. <paramref name="canSetMciStatus"/> is can_set_mci_status
    /// (an AMD guest with HWCR.McStatusWrEn).
    /// </summary>
    public int Set(uint index, ulong data, bool hostInitiated, bool canSetMciStatus)
    {
        switch (index)
        {
            case MsrIndex.IA32_MCG_STATUS:
                _mcgStatus = data;
                return 0;
            case MsrIndex.IA32_MCG_CTL:
                // "if (!(mcg_cap & MCG_CTL_P) && (data || !msr_info->host_initiated)) return 1;
                //  if (data != 0 && data != ~(u64)0) return 1;"
                if ((Cap & McgCap.CtlP) == 0 && (data != 0 || !hostInitiated)) return 1;
                if (data != 0 && data != ulong.MaxValue) return 1;
                _mcgCtl = data;
                return 0;
        }
        if (index - MsrIndex.IA32_MC0_CTL2 < MaxBanks)
        {
            uint bank = index - MsrIndex.IA32_MC0_CTL2;
            if (bank >= BankCount) return 1;
            if ((Cap & McgCap.CmciP) == 0 && (data != 0 || !hostInitiated)) return 1;
            // "An attempt to write a 1 to a reserved bit raises #GP".
            if ((data & ~Ctl2Valid) != 0) return 1;
            _ctl2[bank] = data;
            return 0;
        }
        uint offset = index - MsrIndex.IA32_MC0_CTL;
        if (offset >= 4 * BankCount) return 1;
        // MCi_CTL: only 0 or all ones, where bit 10 (the K8 GART workaround) and bit 0 (UNIXWARE) may be clear.
        if (offset % 4 == 0 && data != 0 && (data | (1UL << 10) | 1) != ulong.MaxValue) return 1;
        // MCi_STATUS: a guest may write only 0 unless can_set_mci_status; the host anything.
        if (!hostInitiated && offset % 4 == 1 && data != 0 && !canSetMciStatus) return 1;
        _banks[offset] = data;
        return 0;
    }

    /// <summary>
    /// kvm_arch_vcpu_ioctl KVM_X86_SETUP_MCE: copy_from_user (EFAULT), then kvm_vcpu_ioctl_x86_setup_mce: no banks or
    /// more than KVM_MAX_MCE_BANKS, or a bit outside supported_mce_cap | 0xff | 0xff0000, is EINVAL with nothing
    /// changed; else mcg_cap is taken, MCG_CTL becomes all ones with MCG_CTL_P, and each bank's MCi_CTL all ones
    /// (MCi_CTL2 0 with MCG_CMCI_P). STATUS, ADDR and MISC keep their values; there is no KVM_RUN restriction.
    /// </summary>
    public long SetupIoctl(IoctlArg arg)
    {
        if (!arg.CopyFromUser(out ulong mcgCap)) return Err.EFAULT;
        uint bankNum = (uint)(mcgCap & McgCap.BankCountMask);
        if (bankNum == 0 || bankNum > MaxBanks) return Err.EINVAL;
        if ((mcgCap & ~(SupportedCap | McgCap.BankCountMask | McgCap.ExtCntMask)) != 0) return Err.EINVAL;
        Cap = mcgCap;
        if ((mcgCap & McgCap.CtlP) != 0) _mcgCtl = ulong.MaxValue;
        for (uint bank = 0; bank < bankNum; bank++)
        {
            _banks[4 * bank] = ulong.MaxValue;
            if ((mcgCap & McgCap.CmciP) != 0) _ctl2[bank] = 0;
        }
        return 0;
    }

    // arch/x86/include/asm/mce.h: MCi_STATUS and MCG_STATUS bits.
    private const ulong MCI_STATUS_VAL = 1UL << 63, MCI_STATUS_OVER = 1UL << 62, MCI_STATUS_UC = 1UL << 61;
    private const ulong MCI_STATUS_PCC = 1UL << 57, MCI_STATUS_S = 1UL << 56, MCI_STATUS_AR = 1UL << 55;
    private const ulong MCG_STATUS_MCIP = 1UL << 2;
    private const int MC_VECTOR = 18;
    private const ulong CR4_MCE = 1UL << 6;

    /// <summary>
    /// kvm_arch_vcpu_ioctl KVM_X86_SET_MCE: copy_from_user (EFAULT), then x86.c kvm_vcpu_ioctl_x86_set_mce, in its order:
    /// <list type="number">
    /// <item>"if (mce-&gt;bank &gt;= bank_num || !(mce-&gt;status &amp; MCI_STATUS_VAL)) return -EINVAL;" — nothing changes.</item>
    /// <item>is_ucna (no mcg_status, no PCC/S/AR, VAL and UC) → kvm_vcpu_x86_set_ucna: STATUS, ADDR, MISC and
    /// MCG_STATUS replaced, no OVER, no #MC (the CMCI it may signal needs an in-kernel APIC).</item>
    /// <item>An uncorrected error is dropped (0, nothing changed) when MCG_CTL_P and MCG_CTL is not all ones, or the
    /// bank's MCi_CTL is not all ones.</item>
    /// <item>Uncorrected: MCG_STATUS.MCIP already set or CR4.MCE clear → KVM_REQ_TRIPLE_FAULT (the next KVM_RUN ends in
    /// KVM_EXIT_SHUTDOWN), banks unchanged; else OVER when the bank held a valid error, ADDR, MISC, MCG_STATUS and
    /// STATUS replaced and kvm_queue_exception(vcpu, MC_VECTOR).</item>
    /// <item>Corrected: into an empty bank or over a corrected error (OVER then), ADDR, MISC, STATUS replaced; over an
    /// uncorrected error only OVER is added.</item>
    /// </list>
    /// </summary>
    public long SetMceIoctl(X86Cpu cpu, IoctlArg arg)
    {
        if (!arg.CopyFromUser(out Abi.kvm_x86_mce mce)) return Err.EFAULT;
        if (mce.bank >= BankCount || (mce.status & MCI_STATUS_VAL) == 0) return Err.EINVAL;
        int b = 4 * mce.bank;
        ulong status = mce.status;
        bool uc = (status & MCI_STATUS_UC) != 0;
        if (mce.mcg_status == 0 && (status & (MCI_STATUS_PCC | MCI_STATUS_S | MCI_STATUS_AR)) == 0 && uc)
        {
            // kvm_vcpu_x86_set_ucna.
            _banks[b + 1] = status;
            _banks[b + 2] = mce.addr;
            _banks[b + 3] = mce.misc;
            _mcgStatus = mce.mcg_status;
            return 0;
        }
        // "if IA32_MCG_CTL is not all 1s, the uncorrected error reporting is disabled"; likewise IA32_MCi_CTL.
        if (uc && (Cap & McgCap.CtlP) != 0 && _mcgCtl != ulong.MaxValue) return 0;
        if (uc && _banks[b] != ulong.MaxValue) return 0;
        if (uc)
        {
            if ((_mcgStatus & MCG_STATUS_MCIP) != 0 || (cpu.Sregs.cr4 & CR4_MCE) == 0)
            {
                cpu.State.TripleFaultRequested = true;
                return 0;
            }
            if ((_banks[b + 1] & MCI_STATUS_VAL) != 0) status |= MCI_STATUS_OVER;
            _banks[b + 2] = mce.addr;
            _banks[b + 3] = mce.misc;
            _mcgStatus = mce.mcg_status;
            _banks[b + 1] = status;
            QueueMachineCheck(cpu.State);
        }
        else if ((_banks[b + 1] & MCI_STATUS_VAL) == 0 || (_banks[b + 1] & MCI_STATUS_UC) == 0)
        {
            if ((_banks[b + 1] & MCI_STATUS_VAL) != 0) status |= MCI_STATUS_OVER;
            _banks[b + 2] = mce.addr;
            _banks[b + 3] = mce.misc;
            _banks[b + 1] = status;
        }
        else
        {
            _banks[b + 1] |= MCI_STATUS_OVER;
        }
        return 0;
    }

    /// <summary>
    /// x86.c kvm_queue_exception(vcpu, MC_VECTOR) → kvm_multiple_exception: with nothing queued the #MC is pending,
    /// without error code or payload; behind a queued #DF it is a triple fault; #MC being benign, behind any other
    /// exception it replaces it ("replace previous exception with a new one").
    /// </summary>
    private static void QueueMachineCheck(VcpuState s)
    {
        if ((s.ExceptionPending || s.ExceptionInjected) && s.ExceptionVector == X86Consts.DF_VECTOR)
        {
            s.TripleFaultRequested = true;
            return;
        }
        s.ExceptionPending = true;
        s.ExceptionInjected = false;
        s.ExceptionVector = MC_VECTOR;
        s.ExceptionHasErrorCode = false;
        s.ExceptionErrorCode = 0;
        s.ExceptionHasPayload = false;
        s.ExceptionPayload = 0;
    }

    /// <summary>kvm_arch_dev_ioctl KVM_X86_GET_MCE_CAP_SUPPORTED: copy_to_user of supported_mce_cap (EFAULT).</summary>
    public static long GetSupportedIoctl(IoctlArg arg) => arg.CopyToUser(SupportedCap) ? 0 : Err.EFAULT;
}
