// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using KvmSharp.Abi;
using KvmSharp.Emulation.Arch;
using KvmSharp.Emulation.Mmu;
using KvmSharp.Emulation.Vfs;

namespace KvmSharp.Emulation.X86.Emulate;

/// <summary>
/// SNP AP creation (SVM_VMGEXIT_AP_CREATION; arch/x86/kvm/svm/sev.c sev_snp_ap_creation and
/// sev_snp_init_protected_guest_state, x86.c's KVM_REQ_UPDATE_PROTECTED_GUEST_STATE). sw_exit_info_1[31:0] is the
/// request (SVM_VMGEXIT_AP_CREATE_ON_INIT 0, _AP_CREATE 1, _AP_DESTROY 2; arch/x86/include/uapi/asm/svm.h), [63:32] the
/// target's APIC ID (kvm_get_vcpu_by_id: the vCPU ID), sw_exit_info_2 the new VMSA's GPA and RAX the SEV features,
/// which must equal the VM's vmsa_features. Any error is GHCB_ERR_INVALID_INPUT to the guest. On success the target
/// is marked waiting for reset and (but for CREATE_ON_INIT, which waits for an INIT) gets the request and a kick; the
/// request is a kvm_vcpu_reset(vcpu, true) at its next entry, whose svm_vcpu_reset takes the new VMSA: mp_state
/// HALTED, then RUNNABLE with the VMSA's state when the GPA is in a guest_memfd-backed memslot (AP_DESTROY: no VMSA,
/// the vCPU stays HALTED and a KVM_RUN forced on it fails in pre_sev_run).
/// <para>
/// The emulator keeps a vCPU's state in its registers, not in a VMSA page: taking the new VMSA loads from the private
/// page (struct sev_es_save_area, arch/x86/include/asm/svm.h) the segment registers, GDTR/IDTR, EFER, CR0/2/3/4,
/// DR0–3/6/7, RFLAGS, RIP and the GPRs, XCR0. Not loaded: the MSRs the VMSA holds (STAR, LSTAR, CSTAR, SFMASK,
/// KERNEL_GS_BASE, SYSENTER_*, PAT, DEBUGCTL, TSC_AUX, XSS, PKRU), CET state, the x87/SSE/AVX state, VMPL, the
/// event-injection and virtual-interrupt fields; sev_features is checked at the request only (as KVM does).
/// </para>
/// </summary>
internal sealed partial class X86Emulator
{
    /// <summary>SVM_VMGEXIT_AP_CREATE_ON_INIT, SVM_VMGEXIT_AP_CREATE, SVM_VMGEXIT_AP_DESTROY.</summary>
    private const uint SvmVmgexitApCreateOnInit = 0, SvmVmgexitApCreate = 1, SvmVmgexitApDestroy = 2;

    /// <summary>GHCB_ERR_INVALID_INPUT (sev-common.h).</summary>
    private const ulong GhcbErrInvalidInput = 5;

    /// <summary>INVALID_PAGE.</summary>
    private const ulong InvalidPage = ulong.MaxValue;

    /// <summary>svm-&gt;sev_es.snp_vmsa_mutex.</summary>
    private readonly Lock _snpVmsaLock = new();

    /// <summary>svm-&gt;sev_es.snp_vmsa_gpa.</summary>
    private ulong _snpVmsaGpa = InvalidPage;

    /// <summary>svm-&gt;sev_es.snp_ap_waiting_for_reset.</summary>
    private bool _snpApWaitingForReset;

    /// <summary>KVM_REQ_UPDATE_PROTECTED_GUEST_STATE is pending on this vCPU.</summary>
    private volatile bool _protectedGuestStateUpdate;

    /// <summary>svm-&gt;vmcb-&gt;control.vmsa_pa == INVALID_PAGE (sev_snp_init_protected_guest_state cleared it).</summary>
    private bool _vmsaInvalid;

    /// <summary>kvm_test_request(KVM_REQ_UPDATE_PROTECTED_GUEST_STATE): kvm_vcpu_has_events counts it (it wakes a blocked vCPU).</summary>
    public bool ProtectedGuestStateUpdatePending => _protectedGuestStateUpdate;

    /// <summary>
    /// vcpu_enter_guest: "if (kvm_check_request(KVM_REQ_UPDATE_PROTECTED_GUEST_STATE, vcpu)) { kvm_vcpu_reset(vcpu,
    /// true); …" — true when the request was taken (the caller resets the vCPU for INIT, then blocks it when the new
    /// state left it not RUNNABLE).
    /// </summary>
    public bool TakeProtectedGuestStateUpdate()
    {
        if (!_protectedGuestStateUpdate) return false;
        _protectedGuestStateUpdate = false;
        return true;
    }

    /// <summary>
    /// svm_vcpu_reset(vcpu, init_event = true) for an SEV-ES/SNP VM: sev_snp_init_protected_guest_state. Returns true when
    /// the vCPU's registers are protected (live in its VMSA), so kvm_vcpu_reset's register writes do not reach them.
    /// </summary>
    public bool SevInitEvent()
    {
        bool protectedState = SevEsStateProtected;
        SnpInitProtectedGuestState();
        return protectedState;
    }

    /// <summary>The SVM_VMGEXIT_AP_CREATION case: "ret = sev_snp_ap_creation(svm); if (ret) svm_vmgexit_bad_input(svm, GHCB_ERR_INVALID_INPUT); ret = 1;"</summary>
    private bool GhcbApCreation(ulong info1, ulong info2)
    {
        if (SnpApCreation(info1, info2) != 0) SetReturnCode(GhcbHvRespMalformedInput, GhcbErrInvalidInput);
        return false;
    }

    /// <summary>sev_snp_ap_creation.</summary>
    private long SnpApCreation(ulong info1, ulong info2)
    {
        uint request = (uint)info1;
        uint apicId = (uint)(info1 >> 32);
        // "target_vcpu = kvm_get_vcpu_by_id(vcpu->kvm, apic_id); if (!target_vcpu) { vcpu_unimpl(…); return -EINVAL; }"
        Vcpu.KvmVcpu? target = null;
        lock (_kvm.Kernel.SyncRoot)
            foreach (var v in _kvm.Vcpus)
                if ((uint)v.Id == apicId) { target = v; break; }
        if (target is null) return Err.EINVAL;
        var t = target.Emulator;
        lock (t._snpVmsaLock)
        {
            switch (request)
            {
                case SvmVmgexitApCreateOnInit:
                case SvmVmgexitApCreate:
                    // "if (vcpu->arch.regs[VCPU_REGS_RAX] != sev->vmsa_features) … return -EINVAL;"
                    if (_ghcbRegs[X86Cpu.RAX] != CocoState.Sev(_kvm).VmsaFeatures) return Err.EINVAL;
                    // "if (!page_address_valid(vcpu, svm->vmcb->control.exit_info_2))": PAGE_ALIGNED and
                    // kvm_vcpu_is_legal_gpa (no vcpu->arch.reserved_gpa_bits).
                    if ((info2 & 0xfff) != 0 || (info2 & SregsRules.ReservedGpaBits(_cpu, _kvm)) != 0) return Err.EINVAL;
                    // "reject the AP CREATE request if VMSA address from guest is 2M aligned" (the SNP erratum).
                    if ((info2 & ((1UL << 21) - 1)) == 0) return Err.EINVAL;
                    t._snpVmsaGpa = info2;
                    break;
                case SvmVmgexitApDestroy:
                    t._snpVmsaGpa = InvalidPage;
                    break;
                default:
                    return Err.EINVAL; // "invalid AP creation request"
            }
            t._snpApWaitingForReset = true;
        }
        // "Unless Creation is deferred until INIT, signal the vCPU to update its state."
        if (request != SvmVmgexitApCreateOnInit)
        {
            t._protectedGuestStateUpdate = true;
            target.Kick(); // kvm_make_request_and_kick
        }
        return 0;
    }

    /// <summary>sev-&gt;ap_jump_table, per VM.</summary>
    private static readonly ConditionalWeakTable<KvmMain.Kvm, StrongBox<ulong>> ApJumpTables = new();

    /// <summary>
    /// SVM_VMGEXIT_AP_JUMP_TABLE: sw_exit_info_1 0 sets the VM's AP jump table address to sw_exit_info_2, 1 returns it
    /// (svm_vmgexit_success(svm, sev-&gt;ap_jump_table)), anything else is GHCB_ERR_INVALID_INPUT ("unsupported AP jump
    /// table request").
    /// </summary>
    private void GhcbApJumpTable(ulong info1, ulong info2)
    {
        var table = ApJumpTables.GetValue(_kvm, _ => new StrongBox<ulong>());
        switch (info1)
        {
            case 0: table.Value = info2; break;
            case 1: SetReturnCode(GhcbHvRespNoAction, table.Value); break;
            default: SetReturnCode(GhcbHvRespMalformedInput, GhcbErrInvalidInput); break;
        }
    }

    /// <summary>sev_snp_init_protected_guest_state (svm_vcpu_reset of an INIT event).</summary>
    private void SnpInitProtectedGuestState()
    {
        if (!CocoState.IsSevType(_kvm) || !CocoState.Sev(_kvm).IsSnpGuest) return;
        lock (_snpVmsaLock)
        {
            if (!_snpApWaitingForReset) return;
            _snpApWaitingForReset = false;
            // "Mark the vCPU as offline and not runnable": pv_unhalted = false, KVM_MP_STATE_HALTED.
            _cpu.State.PvUnhalted = false;
            _cpu.State.MpState = KvmMpState.KVM_MP_STATE_HALTED;
            // "Clear use of the VMSA": vmsa_pa = INVALID_PAGE.
            _vmsaInvalid = true;
            if (_snpVmsaGpa == InvalidPage) return;
            ulong gfn = _snpVmsaGpa >> 12;
            _snpVmsaGpa = InvalidPage;
            KvmMain.KvmMemorySlot? slot;
            lock (_kvm.Kernel.SyncRoot) slot = GuestMemoryPath.GfnToMemslot(_kvm, 0, gfn);
            if (slot is null) return;
            // "The new VMSA will be private memory guest memory, so retrieve the PFN from the gmem backend."
            if (GuestMemoryPath.GmemGetPfn(slot, gfn, out var page) != 0) return;
            var vmsa = new byte[VmsaLoadedBytes];
            if (page.Read(0, vmsa) != vmsa.Length) return;
            LoadVmsa(vmsa);
            _vmsaInvalid = false;
            _cpu.State.MpState = KvmMpState.KVM_MP_STATE_RUNNABLE;
        }
    }

    // struct sev_es_save_area offsets (arch/x86/include/asm/svm.h).
    private const int VmsaEs = 0x00, VmsaCs = 0x10, VmsaSs = 0x20, VmsaDs = 0x30, VmsaFs = 0x40, VmsaGs = 0x50;
    private const int VmsaGdtr = 0x60, VmsaLdtr = 0x70, VmsaIdtr = 0x80, VmsaTr = 0x90, VmsaEfer = 0xd0;
    private const int VmsaCr4 = 0x148, VmsaCr3 = 0x150, VmsaCr0 = 0x158, VmsaDr7 = 0x160, VmsaDr6 = 0x168;
    private const int VmsaRflags = 0x170, VmsaRip = 0x178, VmsaDr0 = 0x180, VmsaRsp = 0x1d8, VmsaRax = 0x1f8, VmsaCr2 = 0x240;
    private const int VmsaRcx = 0x308, VmsaXcr0 = 0x3e8, VmsaLoadedBytes = 0x3f0;

    /// <summary>The VMSA fields the emulator's vCPU state has (see the class comment for what is not loaded).</summary>
    private void LoadVmsa(ReadOnlySpan<byte> v)
    {
        var s = _cpu.Sregs;
        s.es = VmcbSegment(v, VmsaEs);
        s.cs = VmcbSegment(v, VmsaCs);
        s.ss = VmcbSegment(v, VmsaSs);
        s.ds = VmcbSegment(v, VmsaDs);
        s.fs = VmcbSegment(v, VmsaFs);
        s.gs = VmcbSegment(v, VmsaGs);
        s.ldt = VmcbSegment(v, VmsaLdtr);
        s.tr = VmcbSegment(v, VmsaTr);
        s.gdt = new kvm_dtable { limit = (ushort)BinaryPrimitives.ReadUInt32LittleEndian(v[(VmsaGdtr + 4)..]), @base = Q(v, VmsaGdtr + 8) };
        s.idt = new kvm_dtable { limit = (ushort)BinaryPrimitives.ReadUInt32LittleEndian(v[(VmsaIdtr + 4)..]), @base = Q(v, VmsaIdtr + 8) };
        s.efer = Q(v, VmsaEfer);
        s.cr0 = Q(v, VmsaCr0);
        s.cr2 = Q(v, VmsaCr2);
        s.cr3 = Q(v, VmsaCr3);
        s.cr4 = Q(v, VmsaCr4);
        _cpu.Sregs = s;
        _cpu.Rflags = Q(v, VmsaRflags);
        _cpu.Rip = Q(v, VmsaRip);
        _cpu.State.Dr7 = Q(v, VmsaDr7);
        _cpu.State.Dr6 = Q(v, VmsaDr6);
        for (int i = 0; i < 4; i++) _cpu.State.Db[i] = Q(v, VmsaDr0 + 8 * i);
        _cpu.Gpr[X86Cpu.RAX] = Q(v, VmsaRax);
        _cpu.Gpr[X86Cpu.RSP] = Q(v, VmsaRsp);
        // RCX, RDX, RBX, (reserved), RBP, RSI, RDI, R8–R15 from 0x308 on.
        ReadOnlySpan<int> order = [X86Cpu.RCX, X86Cpu.RDX, X86Cpu.RBX, -1, X86Cpu.RBP, X86Cpu.RSI, X86Cpu.RDI, 8, 9, 10, 11, 12, 13, 14, 15];
        for (int i = 0; i < order.Length; i++)
            if (order[i] >= 0) _cpu.Gpr[order[i]] = Q(v, VmsaRcx + 8 * i);
        _cpu.State.Xcr0 = Q(v, VmsaXcr0);
    }

    private static ulong Q(ReadOnlySpan<byte> v, int at) => BinaryPrimitives.ReadUInt64LittleEndian(v[at..]);

    /// <summary>
    /// struct vmcb_seg {u16 selector; u16 attrib; u32 limit; u64 base;} with the VMCB's packed attributes (type 3:0,
    /// S 4, DPL 6:5, P 7, AVL 8, L 9, DB 10, G 11; SVM_SELECTOR_*_SHIFT), as svm_get_segment unpacks them.
    /// </summary>
    private static kvm_segment VmcbSegment(ReadOnlySpan<byte> v, int at)
    {
        ushort attrib = BinaryPrimitives.ReadUInt16LittleEndian(v[(at + 2)..]);
        byte present = (byte)((attrib >> 7) & 1);
        return new kvm_segment
        {
            selector = BinaryPrimitives.ReadUInt16LittleEndian(v[at..]),
            limit = BinaryPrimitives.ReadUInt32LittleEndian(v[(at + 4)..]),
            @base = BinaryPrimitives.ReadUInt64LittleEndian(v[(at + 8)..]),
            type = (byte)(attrib & 0xf),
            s = (byte)((attrib >> 4) & 1),
            dpl = (byte)((attrib >> 5) & 3),
            present = present,
            avl = (byte)((attrib >> 8) & 1),
            l = (byte)((attrib >> 9) & 1),
            db = (byte)((attrib >> 10) & 1),
            g = (byte)((attrib >> 11) & 1),
            unusable = (byte)(present ^ 1),
        };
    }
}
