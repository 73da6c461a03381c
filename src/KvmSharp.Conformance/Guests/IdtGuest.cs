// SPDX-License-Identifier: MIT
using Iced.Intel;
using KvmSharp.Vmm.Arch.X86_64;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Conformance.Guests;

/// <summary>A 64-bit IDT gate type (Intel SDM Vol. 3A 6.14.1, Table 3-2): interrupt gates clear IF, trap gates do not.</summary>
public enum GateKind
{
    Interrupt = 0xE,
    Trap = 0xF,
}

/// <summary>
/// One IDT entry of an <see cref="IdtGuest"/>: its gate type, whether it is present, and what its handler does after
/// recording the delivery — halt (<see cref="ResumeSkip"/> &lt; 0) or drop the error code, add
/// <see cref="ResumeSkip"/> to the saved RIP and IRETQ.
/// </summary>
public readonly record struct IdtVector(int Vector, GateKind Kind = GateKind.Interrupt, int ResumeSkip = -1, bool Present = true);

/// <summary>What one handler saw on entry (one record per delivery, in delivery order).</summary>
public readonly record struct Delivery(
    ulong Vector, ulong Cr2, ulong HandlerRsp, ulong HandlerRflags, ulong? ErrorCode,
    ulong Rip, ulong Cs, ulong Rflags, ulong Rsp, ulong Ss);

/// <summary>
/// A <see cref="LongModeGuest"/> with a 64-bit IDT written by the host and loaded with KVM_SET_SREGS (so delivery is
/// tested without LIDT). Every vector's handler stores what it sees — vector, CR2, its own RSP and RFLAGS, the
/// error code and the five-qword frame (Intel SDM Vol. 3A 6.14.2, Figure 6-9) — into a record in guest memory,
/// then halts or returns with IRETQ. The host reads the records back with <see cref="Deliveries"/>.
/// </summary>
public sealed class IdtGuest : IDisposable
{
    /// <summary>IDT, handlers and records live in the call-data area, which the page tables map with 4 KiB pages.</summary>
    public const ulong IdtGpa = 0x8_0000;
    public const ulong HandlersGpa = 0x8_1000;
    public const ulong ReportGpa = 0x8_4000;
    private const ulong HandlerStride = 0x100;
    private const ulong RecordsGpa = ReportGpa + 0x40;
    private const ulong RecordSize = 0x60;
    private const ulong NoErrorCode = ulong.MaxValue;

    /// <summary>A page no guest piece uses, for tests that rewrite its PTE (<see cref="SetPte"/>); present + writable.</summary>
    public const ulong SpareGpa = 0x8_8000;

    /// <summary>Exceptions that push an error code (SDM Vol. 3A 6.15: #DF, #TS, #NP, #SS, #GP, #PF, #AC).</summary>
    public static bool HasErrorCode(int vector) => vector is 8 or 10 or 11 or 12 or 13 or 14 or 17;

    private IdtGuest(LongModeGuest guest) => Guest = guest;

    public LongModeGuest Guest { get; }

    public Vcpu Vcpu => Guest.Vcpu;

    /// <summary>
    /// Creates the guest: <paramref name="program"/> at <see cref="LongModeGuest.CodeGpa"/>, then an IDT with the
    /// <paramref name="vectors"/> given (all other gates zero, i.e. not present) and limit <paramref name="idtLimit"/>
    /// (default: 32 gates); <paramref name="prepareVm"/> runs on the VM before its vCPU is created.
    /// </summary>
    public static IdtGuest Create(Kvm kvm, Action<Assembler> program, IEnumerable<IdtVector> vectors, ushort idtLimit = 32 * 16 - 1,
        Action<Vm>? prepareVm = null)
    {
        var guest = LongModeGuest.Create(kvm, VmType.Default, backing: null, prepareVm, program);
        try
        {
            var mem = guest.Memory;
            mem.Fill(IdtGpa, Layout.PageSize, 0);
            mem.Fill(ReportGpa, Layout.PageSize, 0);
            foreach (var v in vectors)
            {
                ulong handler = HandlersGpa + (ulong)v.Vector * HandlerStride;
                mem.Write(handler, AssembleAt(handler, a => Handler(a, v)));
                (ulong low, ulong high) = Gate(handler, Gdt.CodeSelector, v.Kind, v.Present);
                mem.Write(IdtGpa + (ulong)v.Vector * 16, low);
                mem.Write(IdtGpa + (ulong)v.Vector * 16 + 8, high);
            }
            var sregs = guest.Vcpu.GetSregs();
            sregs.idt.@base = IdtGpa;
            sregs.idt.limit = idtLimit;
            guest.Vcpu.SetSregs(sregs);
            return new IdtGuest(guest);
        }
        catch
        {
            guest.Dispose();
            throw;
        }
    }

    /// <summary>A 64-bit interrupt or trap gate, DPL 0, IST 0 (SDM Vol. 3A 6.14.1, Figure 6-8).</summary>
    public static (ulong Low, ulong High) Gate(ulong offset, ushort selector, GateKind kind, bool present)
    {
        ulong low = (offset & 0xffff) | ((ulong)selector << 16) | ((ulong)kind << 40) | ((present ? 1UL : 0) << 47)
            | (((offset >> 16) & 0xffff) << 48);
        return (low, offset >> 32);
    }

    /// <summary>The deliveries recorded so far, oldest first.</summary>
    public IReadOnlyList<Delivery> Deliveries
    {
        get
        {
            var mem = Guest.Memory;
            ulong count = mem.Read<ulong>(ReportGpa);
            var list = new List<Delivery>();
            for (ulong i = 0; i < count && i < 16; i++)
            {
                ulong r = RecordsGpa + i * RecordSize;
                ulong Q(int index) => mem.Read<ulong>(r + (ulong)index * 8);
                list.Add(new Delivery(Q(0), Q(1), Q(2), Q(3), Q(4) == NoErrorCode ? null : Q(4), Q(5), Q(6), Q(7), Q(8), Q(9)));
            }
            return list;
        }
    }

    /// <summary>The only delivery; fails when there was none or more than one.</summary>
    public Delivery Single()
    {
        var all = Deliveries;
        if (all.Count != 1) throw new Xunit.Sdk.XunitException($"expected one delivery, got {all.Count}: {string.Join("; ", all)}");
        return all[0];
    }

    /// <summary>Rewrites the 4 KiB PTE of <paramref name="gpa"/> (first 2 MiB only) with <paramref name="flags"/>.</summary>
    public void SetPte(ulong gpa, ulong flags) => Guest.Memory.Write(Layout.Pt + (gpa >> 12) * 8, (gpa & ~0xfffUL) | flags);

    /// <summary>
    /// The handler: save RAX/RBX, append a record, then HLT or return. Frame offsets are from RSP after the two
    /// pushes: [+16] error code (if any), then RIP, CS, RFLAGS, RSP, SS.
    /// </summary>
    private static void Handler(Assembler a, IdtVector v)
    {
        bool err = HasErrorCode(v.Vector);
        a.push(rax);
        a.push(rbx);
        a.mov(rbx, __qword_ptr[ReportGpa]);
        a.imul(rbx, rbx, (int)RecordSize);
        a.add(rbx, (int)RecordsGpa);
        a.mov(__qword_ptr[rbx], v.Vector);
        a.mov(rax, cr2);
        a.mov(__qword_ptr[rbx + 8], rax);
        a.lea(rax, __qword_ptr[rsp + 16]);
        a.mov(__qword_ptr[rbx + 16], rax);
        a.pushfq();
        a.pop(rax);
        a.mov(__qword_ptr[rbx + 24], rax);
        int frame = 16;
        if (err)
        {
            a.mov(rax, __qword_ptr[rsp + 16]);
            a.mov(__qword_ptr[rbx + 32], rax);
            frame += 8;
        }
        else
        {
            a.mov(__qword_ptr[rbx + 32], -1);
        }
        for (int k = 0; k < 5; k++)
        {
            a.mov(rax, __qword_ptr[rsp + frame + 8 * k]);
            a.mov(__qword_ptr[rbx + 40 + 8 * k], rax);
        }
        a.inc(__qword_ptr[ReportGpa]);
        if (v.ResumeSkip < 0)
        {
            var halt = a.CreateLabel();
            a.Label(ref halt);
            a.hlt();
            a.jmp(halt);
            return;
        }
        a.pop(rbx);
        a.pop(rax);
        if (err) a.add(rsp, 8);
        a.add(__qword_ptr[rsp], v.ResumeSkip);
        a.iretq();
    }

    /// <summary>
    /// Emits an IRETQ to ring 3 (prepared by <see cref="PrepareRing3"/>): a frame of SS = <paramref name="userData"/>,
    /// RSP = <paramref name="rsp"/>, RFLAGS = <paramref name="rflags"/>, CS = <paramref name="userCode"/> and RIP = the
    /// next instruction, so the code emitted after it runs at CPL 3. Uses RAX.
    /// </summary>
    public static void IretqToRing3(Assembler a, ushort userCode, ushort userData, ulong rsp, ulong rflags)
    {
        var user = a.CreateLabel();
        a.push((int)userData);
        a.push((int)rsp);
        a.push((int)rflags);
        a.push((int)userCode);
        a.lea(rax, __[user]);
        a.push(rax);
        a.iretq();
        a.Label(ref user);
    }

    /// <summary>
    /// What ring 3 needs, at CPL 0 still: DPL-3 copies of the 64-bit code and the data segment at the GDT entries of
    /// <paramref name="userCode"/> and <paramref name="userData"/> (GDTR widened over them), TR loaded with the TSS
    /// and its RSP0 = <paramref name="rsp0"/> (the stack a fault at CPL 3 switches to), and the U/S bit on the paging
    /// path of the code page and of each of <paramref name="userPages"/> (4 KiB pages of the call-data area). Returns the
    /// two segments, for a KVM_SET_SREGS that starts the vCPU at CPL 3.
    /// </summary>
    public (Abi.kvm_segment Code, Abi.kvm_segment Data) PrepareRing3(ushort userCode, ushort userData, ulong rsp0, params ulong[] userPages)
    {
        var mem = Guest.Memory;
        var code = Gdt.Code;
        (code.dpl, code.selector) = (3, userCode);
        var data = Gdt.Data;
        (data.dpl, data.selector) = (3, userData);
        mem.Write(Layout.Gdt + (ulong)(userCode & ~7), Gdt.Encode(code));
        mem.Write(Layout.Gdt + (ulong)(userData & ~7), Gdt.Encode(data));
        mem.Write(Layout.Tss + 4, rsp0);
        const ulong User = 1UL << 2;
        IEnumerable<ulong> entries = [Layout.Pml4, Layout.Pdpt, Layout.Pd, .. userPages.Prepend(LongModeGuest.CodeGpa).Select(p => Layout.Pt + (p >> 12) * 8)];
        foreach (ulong entry in entries) mem.Write(entry, mem.Read<ulong>(entry) | User);
        var sregs = Vcpu.GetSregs();
        sregs.gdt.limit = (ushort)Math.Max(sregs.gdt.limit, (Math.Max(userCode, userData) & ~7) + 7);
        sregs.tr = Gdt.TaskState;
        Vcpu.SetSregs(sregs);
        return (code, data);
    }

    private static byte[] AssembleAt(ulong ip, Action<Assembler> program)
    {
        var asm = new Assembler(64);
        program(asm);
        using var stream = new MemoryStream();
        asm.Assemble(new StreamCodeWriter(stream), ip);
        return stream.ToArray();
    }

    public void Dispose() => Guest.Dispose();
}
