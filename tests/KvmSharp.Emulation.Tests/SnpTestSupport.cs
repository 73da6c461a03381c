// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using Iced.Intel;
using KvmSharp.Abi;
using KvmSharp.Emulation.Arch;
using KvmSharp.Vmm.Arch.X86_64;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// What the SEV-SNP RMP tests (<see cref="SnpRmpTests"/>, <see cref="SnpRmpVmplTests"/>) share: the report, the
/// termination check, PVALIDATE with its result in the report, the RMP inspection of a <see cref="SevEsGuest"/>, an
/// IDT gate patched into a launch image, and an instruction's fault vector in a plain (non-confidential) VM.
/// </summary>
internal static class SnpTestSupport
{
    /// <summary>The report page through the guest's shared alias.</summary>
    public const ulong ReportLinear = SevEsGuest.SharedAlias + SevEsGuest.Report;

    /// <summary>The GHCB MSR protocol's termination request (GHCB spec 2.0, 0x100) with reason set 1 and <paramref name="code"/>.</summary>
    public static ulong TermValue(byte code) => 0x100 | (1UL << 12) | ((ulong)code << 16);

    /// <summary>Runs the guest and asserts it ends with a SEV_TERM system event carrying <paramref name="code"/>.</summary>
    public static void AssertTerminated(SevEsGuest g, byte code)
    {
        var exit = g.Vcpu.RunBounded();
        Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_SYSTEM_EVENT, $"exit {exit.ToString()}");
        Assert.Equal(KvmConstants.KVM_SYSTEM_EVENT_SEV_TERM, exit.SystemEventType);
        Assert.Equal([TermValue(code)], exit.SystemEventData.ToArray());
    }

    /// <summary>PVALIDATE(RAX = va, ECX = size, EDX = validate); report qword <paramref name="index"/> = EAX | CF &lt;&lt; 8 (RBX = the report).</summary>
    public static void Pvalidate(Assembler a, ulong va, uint size, uint validate, int index)
    {
        a.mov(rax, va);
        a.mov(ecx, size);
        a.mov(edx, validate);
        a.pvalidate();
        a.setc(cl);
        a.movzx(ecx, cl);
        a.shl(ecx, 8);
        a.or(rax, rcx);
        a.mov(__qword_ptr[rbx + index * 8], rax);
    }

    /// <summary>The emulated VM behind the guest (its only one).</summary>
    public static KvmMain.Kvm KvmOf(SevEsGuest g) => g.Kernel.InvariantView.Vms.Single();

    /// <summary>The RMP entry of the page at <paramref name="gpa"/>.</summary>
    public static RmpEntry At(SevEsGuest g, ulong gpa) => SnpRmp.AtGfn(KvmOf(g), gpa >> 12)!.Value;

    /// <summary>
    /// In a launch image (<see cref="SevEsGuest.Create"/>'s patchImage): <paramref name="handler"/> assembled at
    /// <see cref="SevEsGuest.ApCode"/> and the IDT's vector <paramref name="vector"/> made an interrupt gate to it.
    /// </summary>
    public static void PatchHandler(byte[] image, int vector, Action<Assembler> handler)
    {
        const ulong Handler = SevEsGuest.ApCode;
        var asm = new Assembler(64);
        handler(asm);
        using var stream = new MemoryStream();
        asm.Assemble(new StreamCodeWriter(stream), Handler);
        stream.ToArray().CopyTo(image, (int)Handler);
        BinaryPrimitives.WriteUInt64LittleEndian(image.AsSpan((int)(SevEsGuest.Idt + (ulong)vector * 16)),
            (Handler & 0xffff) | ((ulong)Gdt.CodeSelector << 16) | (0xEUL << 40) | (1UL << 47) | (((Handler >> 16) & 0xffff) << 48));
    }

    /// <summary>
    /// A plain 64-bit VM (a host with SNP: the full x86_64 preset; without: the "like this host" preset) running
    /// EAX = ECX = 0, EDX = 1 and <paramref name="instruction"/>: the vector (6 or 13) its IDT's stubs OUT to port 0x10.
    /// </summary>
    public static byte FaultVectorInPlainVm(bool snpHost, Action<Assembler> instruction)
    {
        using var k = new EmulatedKernel(snpHost ? EmulatorConfig.X86_64() : EmulatorConfig.LikeThisHost());
        using var g = new RawGuest(k);
        g.LongMode(a =>
        {
            a.xor(eax, eax);
            a.xor(ecx, ecx);
            a.mov(edx, 1);
            instruction(a);
            a.hlt();
        });
        const ulong GdtBase = 0x5000, IdtBase = 0x6000, Stubs = 0x21_0000;
        g.Write64(GdtBase + 8, 0x00AF_9A00_0000_FFFF);
        g.Write64(GdtBase + 16, 0x00CF_9200_0000_FFFF);
        foreach (int v in new[] { 6, 13 })
        {
            ulong stub = Stubs + (ulong)v * 0x10;
            g.Write(stub, RawGuest.Assemble(64, stub, a => { a.mov(al, (byte)v); a.@out(0x10, al); a.hlt(); }));
            g.Write64(IdtBase + (ulong)v * 16, (stub & 0xffff) | (8UL << 16) | (0xEUL << 40) | (1UL << 47) | (((stub >> 16) & 0xffff) << 48));
            g.Write64(IdtBase + (ulong)v * 16 + 8, stub >> 32);
        }
        var s = g.Sregs;
        s.gdt = new kvm_dtable { @base = GdtBase, limit = 23 };
        s.idt = new kvm_dtable { @base = IdtBase, limit = 32 * 16 - 1 };
        g.Sregs = s;
        g.RunExpect(KvmExitReason.KVM_EXIT_IO);
        return g.IoData[0];
    }
}
