// SPDX-License-Identifier: MIT
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Vmm.Arch.X86_64;

/// <summary>
/// The guest runtime of an SEV-SNP micro-VM (<see cref="Confidential.SnpBoot"/>), assembled with Iced, in the private
/// trampoline page after the <see cref="SnpDispatcher"/> (where a TD has its <see cref="TdRuntime"/>). In an SEV-ES/SNP
/// guest the hypervisor cannot read the registers, so an intercepted instruction (IN, OUT, CPUID, RDMSR, WRMSR …) is not
/// an exit: it raises #VC (vector 29, error code = the SVM exit code) inside the guest, whose handler describes the
/// event in the GHCB — a page it shares with the hypervisor — and asks with VMGEXIT (AMD GHCB specification 56421;
/// Linux arch/x86/coco/sev/ vc_handle_exitcode, vc_handle_ioio, sev_es_ghcb_hv_call). HLT stays an automatic exit.
/// <list type="bullet">
/// <item><see cref="Start"/>, where the first call's vCPU starts (the host sets RIP before SNP_LAUNCH_FINISH seals it):
/// the GHCB MSR protocol (MSR 0xC001_0130 with a request in bits 11:0, then VMGEXIT; sev-common.h): SEV_INFO_REQ
/// (the hypervisor must offer GHCB protocol version <see cref="ProtocolVersion"/>), HV_FT_REQ (it must offer
/// GHCB_HV_FT_SNP), REG_GPA_REQ of <see cref="Layout.Ghcb"/> (an SNP guest must register its GHCB: sev.c
/// sev_handle_vmgexit refuses another GPA), then MSR 0xC001_0130 = the GHCB's GPA, and on into the dispatcher. A
/// refusal is a termination request (GHCB_MSR_TERM_REQ: KVM_EXIT_SYSTEM_EVENT, type KVM_SYSTEM_EVENT_SEV_TERM).</item>
/// <item>The <b>#VC handler</b> (<see cref="VcHandler"/>, IDT vector 29 on IST1 like every gate). It saves every general
/// register, clears the GHCB's valid bitmap and sw_exit_code (Linux vc_ghcb_invalidate), sets protocol_version and
/// ghcb_usage 0, decodes the instruction at the frame's RIP (legacy prefixes 66, 67, F2/F3, segment overrides, REX)
/// and serves:
/// <list type="bullet">
/// <item>SVM_EXIT_IOIO (0x7B): IN AL/AX/EAX from imm8 or DX (E4, E5, EC, ED), OUT imm8 or DX from AL/AX/EAX (E6, E7,
/// EE, EF) — what the guest SDK's kvms_outb/outl/inb compile to. sw_exit_info_1 = the SVM IOIO exit information
/// (port &lt;&lt; 16, bit 0 IN, bit 3 REP, bits 4–6 SZ8/16/32, bits 7–9 address size: A64, A32 with a 0x67 prefix),
/// sw_exit_info_2 = the next RIP, RAX = the value masked to the size for OUT (0 for IN), with their valid bits. After
/// the VMGEXIT an IN's value (the GHCB's RAX, which must be valid) goes to AL or AX (upper bits kept) or EAX
/// (zero-extended), as the instruction would.</item>
/// <item>String SVM_EXIT_IOIO: (REP) INSB/INSW/INSD, OUTSB/OUTSW/OUTSD (6C–6F) with 64-bit addresses, as Linux
/// vc_handle_ioio does it: at most <see cref="GhcbSharedBufferSize"/> / size elements per #VC (REP: min(RCX, that);
/// one without REP) go through the GHCB's shared buffer — sw_scratch = its GPA (ghcb_set_sw_scratch), sw_exit_info_1
/// the IOIO information with IOIO_TYPE_STR (and REP), sw_exit_info_2 the element count. OUTS copies the elements from
/// RSI before the VMGEXIT, INS copies them to RDI after it; each element's address steps by the size, down when the
/// interrupted code's RFLAGS.DF is set (vc_insn_string_read/_write); RSI or RDI then moves by the bytes moved and RCX
/// (REP) drops by the count. While RCX is not 0 the handler returns to the same instruction (ES_RETRY), which raises
/// #VC again for the next chunk; a REP with RCX = 0 only moves RIP on. Not served (vector 29): a 0x67 address-size
/// prefix (ESI/EDI/ECX addressing) and an FS/GS override; an element address that faults is the handler's own fault
/// (a termination request, below).</item>
/// <item>SVM_EXIT_VMMCALL (0x81; 0F 01 D9): as Linux vc_handle_vmmcall with KVM's sev_es_hcall_prepare — RAX, CPL (the
/// interrupted CS's RPL), RBX, RCX, RDX, RSI into the GHCB (KVM's hypercall ABI: number in RAX, arguments in RBX, RCX,
/// RDX, RSI; sev.c sev_es_validate_vmgexit requires RAX and CPL), sw_exit_info_1/2 = 0; after the VMGEXIT the GHCB's
/// RAX (which must be valid) is the guest's RAX. A KVM_HC_MAP_GPA_RANGE hypercall reaches the VMM as
/// KVM_EXIT_HYPERCALL like a plain VM's VMCALL.</item>
/// <item>SVM_EXIT_CPUID (0x72): RAX = leaf, RCX = subleaf, XCR0 when CR4.OSXSAVE is set; EAX, EBX, ECX, EDX from the
/// GHCB (all four must be valid), zero-extended (vc_handle_cpuid).</item>
/// <item>SVM_EXIT_MSR (0x7C): RDMSR/WRMSR with RCX (and RAX, RDX for a write), sw_exit_info_1 = 0 read / 1 write; a
/// read's EDX:EAX from the GHCB (vc_handle_msr). When the hypervisor answers sw_exit_info_1 = 1 with a #GP event in
/// sw_exit_info_2 (verify_exception_info), the guest gets #GP at the instruction: the VMM's stub of vector 13 reports
/// it.</item>
/// </list>
/// It writes MSR 0xC001_0130 = the GHCB's GPA before each VMGEXIT (sev_es_wr_ghcb_msr), requires sw_exit_info_1[31:0]
/// = 0 afterwards, moves the saved RIP past the instruction and IRETQs. An event it does not serve (another exit code,
/// string I/O, an instruction it cannot decode) goes to the VMM's stub of vector 29: the call ends as
/// <see cref="GuestOutcome.Exception"/> with vector 29, error code = the exit code, at the instruction — the stub's own
/// OUT to the exception port is served by this handler. MMIO (SVM_EXIT_NPF, 0x400) is not served: no micro-VM device is
/// memory-mapped (the VMM's devices are all ports), so a guest's MMIO access is reported as vector 29, error code 0x400. A VMGEXIT the hypervisor failed, or a #VC raised while the
/// handler runs (it faulted, and the fault's report raised #VC), is a termination request (reason set 0, code 0):
/// the GHCB cannot be trusted to report it.</item>
/// <item>At <see cref="Base"/> (= <see cref="Layout.SnpMapGpaRange"/>), the <b>page-state change</b> guest code calls to
/// make its pages shared or private (<see cref="SnpPageState"/>: a PSC request in the GHCB, VMGEXIT, the PTEs' C-bit).</item>
/// </list>
/// </summary>
public static class SnpRuntime
{
    /// <summary>
    /// Where the SNP runtime starts in the trampoline page (the dispatcher fills the part below): at
    /// <see cref="Layout.SnpMapGpaRange"/>, lower than a TD's <see cref="TdRuntime.Base"/> (the page-state change needs the room).
    /// </summary>
    public const ulong Base = Layout.SnpMapGpaRange;

    /// <summary>The #VC vector (AMD APM Vol. 2, 8.2.21: VMM communication exception, error code = the exit code).</summary>
    public const int VmmCommunicationException = 29;

    /// <summary>The GHCB MSR (AMD APM Vol. 2, 15.35.5: SEV_ES_GHCB).</summary>
    public const uint GhcbMsr = 0xC001_0130;

    /// <summary>The GHCB protocol version the guest uses (2: SNP's, GHCB specification 56421).</summary>
    public const ushort ProtocolVersion = 2;

    /// <summary>A private byte of the VMM's IDT page, 1 while the #VC handler runs (a #VC then is a termination request).</summary>
    public const ulong Busy = Layout.Idt + 0x800;

    /// <summary>GHCB MSR protocol codes (arch/x86/include/asm/sev-common.h).</summary>
    public const ulong SevInfoReq = 0x002, SevInfoResp = 0x001, HvFeaturesReq = 0x080, HvFeaturesResp = 0x081,
        RegisterGpaReq = 0x012, RegisterGpaResp = 0x013, TerminateReq = 0x100;

    /// <summary>GHCB_HV_FT_SNP, bit 0 of the features in GHCBData[63:12] of the HV_FT response (bit 12 of the MSR).</summary>
    public const ulong HvFeatureSnp = 1UL << 12;

    /// <summary>SVM exit codes (arch/x86/include/uapi/asm/svm.h) the #VC handler serves.</summary>
    public const int ExitIoio = 0x7B, ExitCpuid = 0x72, ExitMsr = 0x7C, ExitVmmcall = 0x81;

    /// <summary>SVM IOIO exit information bits (svm.h SVM_IOIO_*; Linux sev.c IOIO_*): IoioString is IOIO_TYPE_STR.</summary>
    public const ulong IoioIn = 1, IoioString = 1 << 2, IoioRep = 1 << 3, IoioData8 = 1 << 4, IoioData16 = 1 << 5, IoioData32 = 1 << 6,
        IoioAddr32 = 1 << 8, IoioAddr64 = 1 << 9;

    /// <summary>Offsets in the GHCB (struct ghcb, arch/x86/include/asm/svm.h): the save area's fields, the shared buffer.</summary>
    public const int GhcbCpl = 0xCB, GhcbRax = 0x1F8, GhcbRcx = 0x308, GhcbRdx = 0x310, GhcbRbx = 0x318, GhcbRsi = 0x330,
        GhcbSwExitCode = 0x390, GhcbSwExitInfo1 = 0x398, GhcbSwExitInfo2 = 0x3A0, GhcbSwScratch = 0x3A8, GhcbXcr0 = 0x3E8,
        GhcbValidBitmap = 0x3F0, GhcbSharedBuffer = 0x800, GhcbProtocolVersion = 0xFFA, GhcbUsage = 0xFFC;

    /// <summary>
    /// The size of the GHCB's shared buffer (struct ghcb: shared_buffer[0x7F0], up to the reserved bytes at 0xFF0):
    /// a string I/O #VC moves at most this many bytes (Linux vc_handle_ioio: "ghcb_count = sizeof(ghcb-&gt;shared_buffer)
    /// / io_bytes").
    /// </summary>
    public const int GhcbSharedBufferSize = 0x7F0;

    /// <summary>Termination reason sets (sev-common.h): 0 general (SEV_TERM_SET_GEN), 1 Linux's (SEV_TERM_SET_LINUX).</summary>
    public const int TermSetGeneral = 0, TermSetLinux = 1;

    /// <summary>
    /// Termination reason codes (sev-common.h): set 0 code 0 GHCB_SEV_ES_GEN_REQ (a VMGEXIT failed, or a #VC in the #VC
    /// handler), 1 GHCB_SEV_ES_PROT_UNSUPPORTED, 2 GHCB_SNP_UNSUPPORTED; set 1 code 0 GHCB_TERM_REGISTER, 2
    /// GHCB_TERM_PVALIDATE (a PVALIDATE of the page-state change failed: Linux's __pval_terminate).
    /// </summary>
    public const int TermGeneralRequest = 0, TermProtocolUnsupported = 1, TermSnpUnsupported = 2, TermRegister = 0, TermPvalidate = 2;

    private static readonly (byte[] Code, ulong Start, ulong Vc) Assembled = Assemble();
    private static readonly byte[] Table = Idt.WithHandler(VmmCommunicationException, VcHandler);

    /// <summary>The SNP runtime's code, as placed at <see cref="Base"/>.</summary>
    public static ReadOnlySpan<byte> Bytes => Assembled.Code;

    /// <summary>Where the first call's vCPU starts: the GHCB's registration, then the dispatcher.</summary>
    public static ulong Start => Assembled.Start;

    /// <summary>The #VC handler (IDT vector 29).</summary>
    public static ulong VcHandler => Assembled.Vc;

    /// <summary>The SNP micro-VM's IDT (at <see cref="Layout.Idt"/>): the stubs of <see cref="ExceptionHandlers"/>, vector 29 to <see cref="VcHandler"/>, all on IST1.</summary>
    public static ReadOnlySpan<byte> IdtBytes => Table;

    /// <summary>The GHCB MSR value of a termination request: GHCB_MSR_TERM_REQ | set &lt;&lt; 12 | code &lt;&lt; 16 (GHCB_SEV_TERM_REASON).</summary>
    public static ulong TerminationRequest(int set, int code) => TerminateReq | (ulong)(set & 0xF) << 12 | (ulong)(code & 0xFF) << 16;

    /// <summary>
    /// Writes the SNP part of the VMM pages into <paramref name="memory"/> after <see cref="BootMemory"/> wrote the rest:
    /// the dispatcher (<see cref="SnpDispatcher.Write"/>), this runtime at <see cref="Base"/>, the C-bit mask
    /// <paramref name="cbit"/> at <see cref="SnpPageState.CbitMask"/> (the PTE bit its page-state change flips) and the
    /// SNP IDT. The GHCB page (<see cref="Layout.Ghcb"/>) is left zero.
    /// </summary>
    /// <exception cref="ArgumentNullException"><paramref name="memory"/> is null.</exception>
    public static void Write(GuestMemory memory, ulong cbit)
    {
        ArgumentNullException.ThrowIfNull(memory);
        SnpDispatcher.Write(memory);
        memory.Write(Base, Assembled.Code);
        memory.Write(SnpPageState.CbitMask, cbit);
        memory.Write(Layout.Idt, Table);
    }

    private static (byte[], ulong, ulong) Assemble()
    {
        if ((ulong)SnpDispatcher.Bytes.Length > Base - Layout.Trampoline)
            throw new InvalidOperationException($"the dispatcher takes {SnpDispatcher.Bytes.Length} bytes, more than 0x{Base - Layout.Trampoline:X}");
        var a = new Assembler(64);
        Label convert = a.CreateLabel("convert"), start = a.CreateLabel("start"), vc = a.CreateLabel("vc");
        Label protocol = a.CreateLabel("protocol"), unsupported = a.CreateLabel("unsupported"), register = a.CreateLabel("register");
        Label general = a.CreateLabel("general");

        // First, at the fixed address guest code calls: the page-state change (SnpPageState).
        SnpPageState.Assemble(a, ref convert);

        // Start: SEV_INFO (min <= 2 <= max), HV features (SNP), REG_GPA of the GHCB, the GHCB's GPA in the MSR, the dispatcher.
        a.Label(ref start);
        MsrProtocol(a, SevInfoReq);
        a.mov(ecx, eax);
        a.and(ecx, 0xFFF);
        a.cmp(ecx, (int)SevInfoResp);
        a.jne(protocol);
        a.mov(ecx, edx);
        a.shr(ecx, 16);                   // GHCBData[63:48]: the highest version offered
        a.cmp(ecx, ProtocolVersion);
        a.jb(protocol);
        a.movzx(ecx, dx);                 // GHCBData[47:32]: the lowest
        a.cmp(ecx, ProtocolVersion);
        a.ja(protocol);
        MsrProtocol(a, HvFeaturesReq);
        a.mov(ecx, eax);
        a.and(ecx, 0xFFF);
        a.cmp(ecx, (int)HvFeaturesResp);
        a.jne(unsupported);
        a.test(eax, (int)HvFeatureSnp);
        a.jz(unsupported);
        MsrProtocol(a, Layout.Ghcb | RegisterGpaReq);
        a.cmp(eax, (int)(Layout.Ghcb | RegisterGpaResp));
        a.jne(register);
        a.test(edx, edx);
        a.jnz(register);
        WriteGhcbMsr(a);
        a.mov(rax, SnpDispatcher.Dispatch);
        a.jmp(rax);

        a.Label(ref protocol);
        Terminate(a, TermSetGeneral, TermProtocolUnsupported);
        a.Label(ref unsupported);
        Terminate(a, TermSetGeneral, TermSnpUnsupported);
        a.Label(ref register);
        Terminate(a, TermSetLinux, TermRegister);
        a.Label(ref general);
        Terminate(a, TermSetGeneral, TermGeneralRequest);

        AssembleVcHandler(a, ref vc, general);

        using var stream = new MemoryStream();
        var result = a.Assemble(new StreamCodeWriter(stream), Base, BlockEncoderOptions.ReturnNewInstructionOffsets);
        byte[] code = stream.ToArray();
        if ((ulong)code.Length > SnpPageState.CbitMask - Base) throw new InvalidOperationException($"the SNP runtime takes {code.Length} bytes, more than its part of the page");
        if (result.GetLabelRIP(convert) != Layout.SnpMapGpaRange) throw new InvalidOperationException("the page-state change is not at Layout.SnpMapGpaRange");
        return (code, result.GetLabelRIP(start), result.GetLabelRIP(vc));
    }

    /// <summary>GHCB MSR protocol: MSR = <paramref name="request"/>, VMGEXIT, EDX:EAX = the MSR (the response).</summary>
    private static void MsrProtocol(Assembler a, ulong request)
    {
        a.mov(ecx, GhcbMsr);
        a.mov(eax, (uint)request);
        a.mov(edx, (uint)(request >> 32));
        a.wrmsr();
        a.vmgexit();
        a.rdmsr();
    }

    /// <summary>MSR 0xC001_0130 = the GHCB's GPA (clobbers RAX, RCX, RDX).</summary>
    private static void WriteGhcbMsr(Assembler a)
    {
        a.mov(ecx, GhcbMsr);
        a.mov(eax, (uint)Layout.Ghcb);
        a.xor(edx, edx);
        a.wrmsr();
    }

    /// <summary>GHCB_MSR_TERM_REQ with reason <paramref name="set"/>, <paramref name="code"/>, VMGEXIT; the hypervisor does not resume a guest that asked, so HLT for good.</summary>
    internal static void Terminate(Assembler a, int set, int code)
    {
        Label halt = a.CreateLabel();
        a.mov(ecx, GhcbMsr);
        a.mov(eax, (uint)TerminationRequest(set, code));
        a.xor(edx, edx);
        a.wrmsr();
        a.vmgexit();
        a.Label(ref halt);
        a.hlt();
        a.jmp(halt);
    }

    /// <summary>
    /// The #VC handler. Frame on entry: error code (the exit code), RIP, CS, RFLAGS, RSP, SS. RBX holds the GHCB's
    /// address throughout; RSI the faulting RIP, RDI the opcode's address, R8 the prefixes (bit 0: 66, bit 1: F2/F3,
    /// bit 2: 67, bit 3: FS/GS override), R11 the next RIP.
    /// </summary>
    private static void AssembleVcHandler(Assembler a, ref Label vc, Label terminate)
    {
        AssemblerRegister64[] saved = [rax, rbx, rcx, rdx, rsi, rdi, rbp, r8, r9, r10, r11, r12, r13, r14, r15];
        int Saved(AssemblerRegister64 r) => (saved.Length - 1 - Array.IndexOf(saved, r)) * sizeof(ulong);
        int errorCode = saved.Length * sizeof(ulong);
        int frameRip = errorCode + sizeof(ulong);
        int frameCs = frameRip + sizeof(ulong);
        int frameRflags = frameCs + sizeof(ulong);
        Label served = a.CreateLabel("served"), unhandled = a.CreateLabel("unhandled");
        Label prefix = a.CreateLabel(), next = a.CreateLabel(), notSegment = a.CreateLabel(), decoded = a.CreateLabel();
        Label ioio = a.CreateLabel("ioio"), cpuid = a.CreateLabel("cpuid"), msr = a.CreateLabel("msr");
        Label stringIo = a.CreateLabel("string_io"), vmmcall = a.CreateLabel("vmmcall");

        a.Label(ref vc);
        a.cmp(__byte_ptr[Busy], 0);
        a.jne(terminate);
        a.mov(__byte_ptr[Busy], 1);
        foreach (var r in saved) a.push(r);
        a.mov(ebx, (uint)Layout.Ghcb);
        a.xor(eax, eax);
        a.mov(__qword_ptr[rbx + GhcbValidBitmap], rax);
        a.mov(__qword_ptr[rbx + GhcbValidBitmap + 8], rax);
        a.mov(__qword_ptr[rbx + GhcbSwExitCode], rax);
        a.mov(__word_ptr[rbx + GhcbProtocolVersion], ProtocolVersion);
        a.mov(__dword_ptr[rbx + GhcbUsage], 0);
        a.cld();                          // the interrupted code's DF is its own: the handler's REP MOVSB go up
        a.mov(eax, __dword_ptr[rsp + errorCode]);
        a.cmp(eax, ExitIoio);
        a.je(decoded);
        a.cmp(eax, ExitCpuid);
        a.je(decoded);
        a.cmp(eax, ExitVmmcall);
        a.je(decoded);
        a.cmp(eax, ExitMsr);
        a.jne(unhandled);

        // Legacy prefixes and REX, at most 14 bytes of them (an instruction is at most 15).
        a.Label(ref decoded);
        a.mov(rsi, __qword_ptr[rsp + frameRip]);
        a.mov(rdi, rsi);
        a.xor(r8d, r8d);
        a.mov(ecx, 14);
        a.Label(ref prefix);
        a.movzx(eax, __byte_ptr[rdi]);
        a.mov(edx, 1);
        a.cmp(al, 0x66);
        a.je(next);
        a.mov(edx, 4);
        a.cmp(al, 0x67);
        a.je(next);
        a.mov(edx, 2);
        a.cmp(al, 0xF3);
        a.je(next);
        a.cmp(al, 0xF2);
        a.je(next);
        a.xor(edx, edx);
        foreach (byte segment in new byte[] { 0x26, 0x2E, 0x36, 0x3E })
        {
            a.cmp(al, segment);
            a.je(next);
        }
        a.mov(edx, 8);                    // FS/GS: a base that string I/O would have to add
        a.cmp(al, 0x64);
        a.je(next);
        a.cmp(al, 0x65);
        a.je(next);
        a.xor(edx, edx);
        a.mov(r9d, eax);
        a.and(r9d, 0xF0);
        a.cmp(r9d, 0x40);                 // REX (W does not widen I/O; CPUID and MSR ignore it)
        a.jne(notSegment);
        a.Label(ref next);
        a.or(r8d, edx);
        a.inc(rdi);
        a.dec(ecx);
        a.jnz(prefix);
        a.jmp(unhandled);
        a.Label(ref notSegment);
        a.mov(r9d, __dword_ptr[rsp + errorCode]);
        a.cmp(r9d, ExitCpuid);
        a.je(cpuid);
        a.cmp(r9d, ExitMsr);
        a.je(msr);
        a.cmp(r9d, ExitVmmcall);
        a.je(vmmcall);

        // IOIO: E4/E5/E6/E7 ib and EC/ED/EE/EF (opcode & 0xF4 == 0xE4); bit 3 = DX form, bit 1 = OUT, bit 0 = not 8-bit.
        // 6C-6F (opcode & 0xFC == 0x6C) are INS/OUTS, with the same bits 1 and 0.
        a.Label(ref ioio);
        a.mov(edx, eax);
        a.and(edx, 0xFC);
        a.cmp(edx, 0x6C);
        a.je(stringIo);
        a.mov(edx, eax);
        a.and(edx, 0xF4);
        a.cmp(edx, 0xE4);
        a.jne(unhandled);
        Label dxForm = a.CreateLabel(), havePort = a.CreateLabel(), addr = a.CreateLabel(), noRep = a.CreateLabel();
        Label inValue = a.CreateLabel();
        a.test(eax, 8);
        a.jnz(dxForm);
        a.movzx(r10d, __byte_ptr[rdi + 1]);
        a.lea(r11, __[rdi + 2]);
        a.jmp(havePort);
        a.Label(ref dxForm);
        a.movzx(r10d, __word_ptr[rsp + Saved(rdx)]);
        a.lea(r11, __[rdi + 1]);
        a.Label(ref havePort);
        a.shl(r10d, 16);
        a.mov(edx, (int)IoioAddr64);
        a.test(r8d, 4);
        a.jz(addr);
        a.mov(edx, (int)IoioAddr32);
        a.Label(ref addr);
        a.or(r10d, edx);
        a.test(r8d, 2);
        a.jz(noRep);
        a.or(r10d, (int)IoioRep);
        a.Label(ref noRep);
        IoioDirectionAndSize(a, byteValue: 0xFF, wordValue: 0xFFFF, dwordValue: uint.MaxValue); // R12 = the value's mask
        a.xor(ecx, ecx);
        a.test(r10d, (int)IoioIn);
        a.jnz(inValue);
        a.mov(rcx, __qword_ptr[rsp + Saved(rax)]);
        a.and(rcx, r12);
        a.Label(ref inValue);
        a.mov(__qword_ptr[rbx + GhcbRax], rcx);
        SetValid(a, GhcbRax);
        CallOrTerminate(a, ExitIoio, info1: r10, info2: r11, terminate);
        a.test(r10d, (int)IoioIn);
        a.jz(served);
        // IN: AL/AX merged into RAX, EAX zero-extended.
        Label in32 = a.CreateLabel(), store = a.CreateLabel();
        RequireValid(a, GhcbRax, terminate);
        a.mov(rcx, __qword_ptr[rbx + GhcbRax]);
        a.and(rcx, r12);
        a.mov(rax, __qword_ptr[rsp + Saved(rax)]);
        a.test(r10d, (int)IoioData32);
        a.jnz(in32);
        a.not(r12);
        a.and(rax, r12);
        a.or(rax, rcx);
        a.jmp(store);
        a.Label(ref in32);
        a.mov(rax, rcx);
        a.Label(ref store);
        a.mov(__qword_ptr[rsp + Saved(rax)], rax);
        a.jmp(served);

        AssembleStringIo(a, stringIo, served, unhandled, terminate, Saved, frameRip, frameRflags);
        AssembleVmmcall(a, vmmcall, served, unhandled, terminate, Saved, frameCs);

        // CPUID (0F A2): RAX = leaf, RCX = subleaf, XCR0 if CR4.OSXSAVE.
        a.Label(ref cpuid);
        Label noXsave = a.CreateLabel();
        a.movzx(eax, __word_ptr[rdi]);
        a.cmp(eax, 0xA20F);
        a.jne(unhandled);
        a.lea(r11, __[rdi + 2]);
        SetFieldFromSaved(a, GhcbRax, Saved(rax));
        SetFieldFromSaved(a, GhcbRcx, Saved(rcx));
        a.mov(rax, cr4);
        a.bt(eax, 18);                    // CR4.OSXSAVE: XGETBV would #UD without it
        a.jnc(noXsave);
        a.xor(ecx, ecx);
        a.xgetbv();
        a.shl(rdx, 32);
        a.or(rax, rdx);
        a.mov(__qword_ptr[rbx + GhcbXcr0], rax);
        SetValid(a, GhcbXcr0);
        a.Label(ref noXsave);
        a.xor(r10d, r10d);
        CallOrTerminate(a, ExitCpuid, info1: r10, info2: r10, terminate);
        foreach ((int field, AssemblerRegister64 r) in new[] { (GhcbRax, rax), (GhcbRbx, rbx), (GhcbRcx, rcx), (GhcbRdx, rdx) })
        {
            RequireValid(a, field, terminate);
        }
        foreach ((int field, AssemblerRegister64 r) in new[] { (GhcbRax, rax), (GhcbRbx, rbx), (GhcbRcx, rcx), (GhcbRdx, rdx) })
        {
            a.mov(eax, __dword_ptr[rbx + field]);
            a.mov(__qword_ptr[rsp + Saved(r)], rax);
        }
        a.jmp(served);

        // RDMSR (0F 32) / WRMSR (0F 30): RCX (+ RAX, RDX), sw_exit_info_1 = 0 read / 1 write.
        a.Label(ref msr);
        Label write = a.CreateLabel(), asked = a.CreateLabel(), exception = a.CreateLabel();
        a.cmp(__byte_ptr[rdi], 0x0F);
        a.jne(unhandled);
        a.lea(r11, __[rdi + 2]);
        SetFieldFromSaved(a, GhcbRcx, Saved(rcx));
        a.xor(r10d, r10d);
        a.movzx(eax, __byte_ptr[rdi + 1]);
        a.cmp(al, 0x32);
        a.je(asked);
        a.cmp(al, 0x30);
        a.jne(unhandled);
        a.Label(ref write);
        a.mov(r10d, 1);
        SetFieldFromSaved(a, GhcbRax, Saved(rax));
        SetFieldFromSaved(a, GhcbRdx, Saved(rdx));
        a.Label(ref asked);
        a.xor(r9d, r9d);
        Call(a, ExitMsr, info1: r10, info2: r9);
        a.cmp(eax, 1);
        a.je(exception);
        a.test(eax, eax);
        a.jnz(terminate);
        a.test(r10d, r10d);
        a.jnz(served);
        foreach ((int field, AssemblerRegister64 r) in new[] { (GhcbRax, rax), (GhcbRdx, rdx) })
        {
            RequireValid(a, field, terminate);
            a.mov(eax, __dword_ptr[rbx + field]);
            a.mov(__qword_ptr[rsp + Saved(r)], rax);
        }
        a.jmp(served);
        // sw_exit_info_2 = an event to inject (SVM EVENTINJ: vector 7:0, type 10:8 = 3 exception, bit 31 valid): #GP is
        // reported as the guest's #GP at the instruction (the error code 0 in place of the exit code); anything else fails.
        a.Label(ref exception);
        a.mov(eax, __dword_ptr[rbx + GhcbSwExitInfo2]);
        a.and(eax, unchecked((int)0x8000_07FF));
        a.cmp(eax, unchecked((int)0x8000_030D));
        a.jne(terminate);
        a.mov(__qword_ptr[rsp + errorCode], 0);
        RestoreRegisters(a, saved);
        a.jmp(ExceptionHandlers.Stub(13));

        a.Label(ref served);
        a.mov(__qword_ptr[rsp + frameRip], r11);
        RestoreRegisters(a, saved);
        a.add(rsp, sizeof(ulong));        // the error code
        a.iretq();

        // Not served: the registers back, and on to the VMM's stub of vector 29 (its OUT comes back here, served).
        a.Label(ref unhandled);
        RestoreRegisters(a, saved);
        a.jmp(ExceptionHandlers.Stub(VmmCommunicationException));
    }

    /// <summary>
    /// String IOIO (Linux vc_handle_ioio's IOIO_TYPE_STR branch). On entry EAX = the opcode (6C–6F), RDI its address,
    /// R8 the prefixes. Moves one chunk through the GHCB's shared buffer and goes to <paramref name="served"/> with R11
    /// = the next RIP when the instruction is done, or the same RIP while RCX (REP) is not 0.
    /// </summary>
    private static void AssembleStringIo(Assembler a, Label stringIo, Label served, Label unhandled, Label terminate,
        Func<AssemblerRegister64, int> saved, int frameRip, int frameRflags)
    {
        Label counted = a.CreateLabel(), upward = a.CreateLabel();
        Label asked = a.CreateLabel(), moved = a.CreateLabel(), again = a.CreateLabel();
        a.Label(ref stringIo);
        a.test(r8d, 4 | 8);
        a.jnz(unhandled);                 // 0x67 (ESI/EDI/ECX) or an FS/GS base: not served
        a.lea(r11, __[rdi + 1]);
        // R10 = the IOIO information: port (DX), A64, STR, REP, IN, size; R12 = the element size.
        a.movzx(r10d, __word_ptr[rsp + saved(rdx)]);
        a.shl(r10d, 16);
        a.or(r10d, (int)(IoioAddr64 | IoioString));
        IoioDirectionAndSize(a, byteValue: 1, wordValue: 2, dwordValue: 4);
        // R13 = the elements of this chunk: REP ? min(RCX, buffer / size) : 1; a REP with RCX = 0 does nothing.
        a.mov(r13d, 1);
        a.test(r8d, 2);
        a.jz(counted);
        a.or(r10d, (int)IoioRep);
        a.mov(r13, __qword_ptr[rsp + saved(rcx)]);
        a.test(r13, r13);
        a.jz(again);
        a.xor(edx, edx);
        a.mov(eax, GhcbSharedBufferSize);
        a.div(r12d);                      // EAX = buffer / size
        a.cmp(r13, rax);
        a.jbe(counted);
        a.mov(r13, rax);
        a.Label(ref counted);
        // R14 = the bytes; R15 = an element's stride (-size with DF: vc_insn_string_read/_write "if (backwards)").
        a.mov(r14, r13);
        a.imul(r14, r12);
        a.mov(r15, r12);
        a.bt(__dword_ptr[rsp + frameRflags], 10);
        a.jnc(upward);
        a.neg(r15);
        a.Label(ref upward);
        a.test(r10d, (int)IoioIn);
        a.jnz(asked);
        // OUTS: the elements from [RSI] into the shared buffer, in the order the instruction writes them.
        a.mov(rsi, __qword_ptr[rsp + saved(rsi)]);
        a.lea(rdi, __[rbx + GhcbSharedBuffer]);
        CopyElements(a, strided: rsi, asked);
        a.Label(ref asked);
        a.lea(rax, __[rbx + GhcbSharedBuffer]);
        a.mov(__qword_ptr[rbx + GhcbSwScratch], rax);
        SetValid(a, GhcbSwScratch);
        CallOrTerminate(a, ExitIoio, info1: r10, info2: r13, terminate);
        a.test(r10d, (int)IoioIn);
        a.jz(moved);
        // INS: the shared buffer's elements to [RDI].
        a.lea(rsi, __[rbx + GhcbSharedBuffer]);
        a.mov(rdi, __qword_ptr[rsp + saved(rdi)]);
        CopyElements(a, strided: rdi, moved);
        // RSI (OUTS) or RDI (INS) by the bytes moved, RCX by the count (REP); the same RIP while RCX is not 0.
        a.Label(ref moved);
        Label sourced = a.CreateLabel();
        a.test(r15, r15);
        a.jns(sourced);
        a.neg(r14);
        a.Label(ref sourced);
        StringIoEmit.AdvanceIndexRegister(a, r10d, (int)IoioIn, r14, saved);
        a.test(r10d, (int)IoioRep);
        a.jz(served);
        a.sub(__qword_ptr[rsp + saved(rcx)], r13);
        a.jz(served);
        a.Label(ref again);
        a.test(r13, r13);
        a.je(served);                     // REP with RCX = 0: on to the next instruction
        a.mov(r11, __qword_ptr[rsp + frameRip]); // ES_RETRY: the instruction again, for the next chunk
        a.jmp(served);
    }

    /// <summary>
    /// VMMCALL (0F 01 D9; Linux vc_handle_vmmcall with kvm_sev_es_hcall_prepare): RAX, CPL, RBX, RCX, RDX, RSI in the
    /// GHCB, sw_exit_info_1/2 = 0, VMGEXIT, RAX from the GHCB (required valid).
    /// </summary>
    private static void AssembleVmmcall(Assembler a, Label vmmcall, Label served, Label unhandled, Label terminate,
        Func<AssemblerRegister64, int> saved, int frameCs)
    {
        a.Label(ref vmmcall);
        a.movzx(eax, __word_ptr[rdi]);
        a.cmp(eax, 0x010F);
        a.jne(unhandled);
        a.cmp(__byte_ptr[rdi + 2], 0xD9);
        a.jne(unhandled);
        a.lea(r11, __[rdi + 3]);
        foreach ((int field, AssemblerRegister64 r) in new[] { (GhcbRax, rax), (GhcbRbx, rbx), (GhcbRcx, rcx), (GhcbRdx, rdx), (GhcbRsi, rsi) })
        {
            a.mov(rax, __qword_ptr[rsp + saved(r)]);
            a.mov(__qword_ptr[rbx + field], rax);
            SetValid(a, field);
        }
        a.movzx(eax, __byte_ptr[rsp + frameCs]);
        a.and(eax, 3);                    // user_mode(regs) ? 3 : 0 — the RPL of the interrupted CS
        a.mov(__byte_ptr[rbx + GhcbCpl], al);
        SetValid(a, GhcbCpl);
        a.xor(r10d, r10d);
        CallOrTerminate(a, ExitVmmcall, info1: r10, info2: r10, terminate);
        RequireValid(a, GhcbRax, terminate);
        a.mov(rax, __qword_ptr[rbx + GhcbRax]);
        a.mov(__qword_ptr[rsp + saved(rax)], rax);
        a.jmp(served);
    }

    /// <summary>
    /// R10 |= IN unless the opcode in EAX has bit 1 (OUT); R10 |= the data size (opcode bit 0 clear: 8-bit, else 16-bit
    /// with the 66 prefix in R8 bit 0, else 32-bit) and R12 = the value given for that size. Shared by the IOIO and the
    /// string IOIO paths, which decode the same opcode bits and differ only in what R12 holds (a mask or a byte count).
    /// </summary>
    private static void IoioDirectionAndSize(Assembler a, uint byteValue, uint wordValue, uint dwordValue)
    {
        Label isOut = a.CreateLabel(), wide = a.CreateLabel(), dword = a.CreateLabel(), sized = a.CreateLabel();
        a.test(eax, 2);
        a.jnz(isOut);
        a.or(r10d, (int)IoioIn);
        a.Label(ref isOut);
        a.test(eax, 1);
        a.jnz(wide);
        a.or(r10d, (int)IoioData8);
        a.mov(r12d, byteValue);
        a.jmp(sized);
        a.Label(ref wide);
        a.test(r8d, 1);
        a.jz(dword);
        a.or(r10d, (int)IoioData16);
        a.mov(r12d, wordValue);
        a.jmp(sized);
        a.Label(ref dword);
        a.or(r10d, (int)IoioData32);
        a.mov(r12d, dwordValue);
        a.Label(ref sized);
    }

    /// <summary>
    /// Copies R13 elements of R12 bytes from [RSI] to [RDI] in the order the string instruction moves them: one REP
    /// MOVSB of R14 bytes upward, or element by element downward when the stride R15 is negative (DF), stepping
    /// <paramref name="strided"/> (the guest-side pointer) back over each element to the one below; then to
    /// <paramref name="done"/>. OUTS (guest → shared buffer) and INS (shared buffer → guest) differ only in which side strides.
    /// </summary>
    private static void CopyElements(Assembler a, AssemblerRegister64 strided, Label done)
    {
        Label down = a.CreateLabel(), element = a.CreateLabel();
        a.test(r15, r15);
        a.js(down);
        a.mov(rcx, r14);
        a.rep.movsb();
        a.jmp(done);
        a.Label(ref down);
        a.mov(r9, r13);
        a.Label(ref element);
        a.mov(rcx, r12);
        a.rep.movsb();
        a.lea(strided, __[strided + r15 * 2]); // back over this element and on to the one below it
        a.dec(r9);
        a.jnz(element);
    }

    /// <summary>The GHCB field at <paramref name="field"/> = the low 32 bits of the saved register at <paramref name="savedOffset"/>, marked valid (CPUID and MSR inputs are 32-bit).</summary>
    private static void SetFieldFromSaved(Assembler a, int field, int savedOffset)
    {
        a.mov(eax, __dword_ptr[rsp + savedOffset]);
        a.mov(__qword_ptr[rbx + field], rax);
        SetValid(a, field);
    }

    /// <summary>Pops the saved registers and clears the busy flag: every way out of the #VC handler does this first.</summary>
    private static void RestoreRegisters(Assembler a, AssemblerRegister64[] saved)
    {
        for (int i = saved.Length - 1; i >= 0; i--) a.pop(saved[i]);
        a.mov(__byte_ptr[Busy], 0);
    }

    /// <summary>Sets the valid bit of the GHCB field at <paramref name="offset"/> (bit offset / 8 of the bitmap).</summary>
    private static void SetValid(Assembler a, int offset) =>
        a.bts(__qword_ptr[rbx + GhcbValidBitmap + offset / 8 / 64 * 8], (byte)(offset / 8 % 64));

    /// <summary>Goes to <paramref name="otherwise"/> unless the GHCB field at <paramref name="offset"/> is valid (the hypervisor set it).</summary>
    private static void RequireValid(Assembler a, int offset, Label otherwise)
    {
        a.bt(__qword_ptr[rbx + GhcbValidBitmap + offset / 8 / 64 * 8], (byte)(offset / 8 % 64));
        a.jnc(otherwise);
    }

    /// <summary>
    /// sw_exit_code, sw_exit_info_1 and _2 with their valid bits, the GHCB MSR, VMGEXIT; EAX = sw_exit_info_1[31:0]
    /// (0: success). Clobbers RAX, RCX, RDX.
    /// </summary>
    private static void Call(Assembler a, int exitCode, AssemblerRegister64 info1, AssemblerRegister64 info2)
    {
        a.mov(__qword_ptr[rbx + GhcbSwExitCode], exitCode);
        a.mov(__qword_ptr[rbx + GhcbSwExitInfo1], info1);
        a.mov(__qword_ptr[rbx + GhcbSwExitInfo2], info2);
        SetValid(a, GhcbSwExitCode);
        SetValid(a, GhcbSwExitInfo1);
        SetValid(a, GhcbSwExitInfo2);
        WriteGhcbMsr(a);
        a.vmgexit();
        a.mov(eax, __dword_ptr[rbx + GhcbSwExitInfo1]);
    }

    /// <summary>
    /// <see cref="Call"/>, then to <paramref name="terminate"/> unless sw_exit_info_1[31:0] is 0: the hypervisor
    /// reported an error (Linux's verify_exception_info: ES_VMM_ERROR, which no #VC handler recovers from). The IOIO,
    /// string IOIO, CPUID and VMMCALL paths all end so; the MSR path also takes 1 (an event to inject) and stays apart.
    /// </summary>
    private static void CallOrTerminate(Assembler a, int exitCode, AssemblerRegister64 info1, AssemblerRegister64 info2, Label terminate)
    {
        Call(a, exitCode, info1, info2);
        a.test(eax, eax);
        a.jnz(terminate);
    }
}
