// SPDX-License-Identifier: MIT
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;
using KvmSharp.Abi;

namespace KvmSharp.Conformance.Guests;

/// <summary>
/// A guest that starts in real mode and switches modes itself, the way boot code does: 64 KiB of host memory at
/// <see cref="Base"/> (slot 0) holding 16-, 32- and 64-bit code blocks at fixed offsets, a GDT, identity page tables
/// for the first 2 MiB and a stack. Real mode starts with CS = DS = SS = Base / 16, IP = 0, SP = <see cref="StackTop"/>
/// - Base; the host has set EFER.LME (a vCPU without KVM_SET_CPUID2 cannot set it itself), so setting CR0.PG with
/// CR4.PAE enters long mode. Code is assembled with Iced, never hand-typed.
/// </summary>
public sealed class ModeSwitchGuest : IDisposable
{
    public const ulong Base = 0x10000;
    public const ulong Size = 0x10000;

    /// <summary>Where each block's code starts (guest-physical = linear in the flat segments).</summary>
    public const ulong Code16 = Base, Code16Far = Base + 0x300, Code32 = Base + 0x400, Code32Far = Base + 0x500,
        Code64 = Base + 0x600, Code64Far = Base + 0x700;

    /// <summary>GDT at <see cref="Gdt"/>; its pseudo-descriptor (limit, base) for LGDT at <see cref="GdtPointer"/>.</summary>
    public const ulong Gdt = Base + 0x800, GdtPointer = Base + 0x900;

    /// <summary>Free data for the blocks (e.g. far pointers in memory).</summary>
    public const ulong Data = Base + 0xA00;

    public const ulong Pml4 = Base + 0x1000, Pdpt = Base + 0x2000, Pd = Base + 0x3000;
    public const ulong StackTop = Base + 0xF000;

    /// <summary>GDT selectors: flat 32-bit code and data, 64-bit code, and a 16-bit code segment based at <see cref="Base"/>.</summary>
    public const ushort Code32Selector = 0x08, DataSelector = 0x10, Code64Selector = 0x18, Code16Selector = 0x20;

    /// <summary>The GDT's limit (5 descriptors): selector 0x28 and above are beyond it.</summary>
    public const ushort GdtLimit = 5 * 8 - 1;

    private const ulong EferLme = 1UL << 8;

    private ModeSwitchGuest(Vm vm, AnonymousMemory memory, MemorySlot slot, Vcpu vcpu)
    {
        Vm = vm;
        Memory = memory;
        Slot = slot;
        Vcpu = vcpu;
    }

    public Vm Vm { get; }

    public AnonymousMemory Memory { get; }

    public MemorySlot Slot { get; }

    public Vcpu Vcpu { get; }

    /// <summary>
    /// Builds the guest. Each block is assembled for its mode at its fixed address; a null block leaves zeros.
    /// </summary>
    public static ModeSwitchGuest Create(Kvm kvm, Action<Assembler> code16, Action<Assembler>? code16Far = null,
        Action<Assembler>? code32 = null, Action<Assembler>? code32Far = null, Action<Assembler>? code64 = null,
        Action<Assembler>? code64Far = null)
    {
        ArgumentNullException.ThrowIfNull(kvm);
        var vm = kvm.CreateVm();
        AnonymousMemory? memory = null;
        MemorySlot? slot = null;
        try
        {
            memory = vm.AllocateMemory(Size);
            Place(memory, 16, Code16, code16);
            Place(memory, 16, Code16Far, code16Far);
            Place(memory, 32, Code32, code32);
            Place(memory, 32, Code32Far, code32Far);
            Place(memory, 64, Code64, code64);
            Place(memory, 64, Code64Far, code64Far);
            WriteTables(memory);
            slot = vm.AddMemorySlot(0, Base, memory);
            var vcpu = vm.CreateVcpu(0);
            var sregs = vcpu.GetSregs();
            sregs.cs.@base = sregs.ds.@base = sregs.ss.@base = Base;
            sregs.cs.selector = sregs.ds.selector = sregs.ss.selector = (ushort)(Base >> 4);
            sregs.efer |= EferLme;
            vcpu.SetSregs(sregs);
            vcpu.SetRegs(new kvm_regs { rip = 0, rsp = StackTop - Base, rflags = 2 });
            return new ModeSwitchGuest(vm, memory, slot, vcpu);
        }
        catch
        {
            slot?.Dispose();
            memory?.Dispose();
            vm.Dispose();
            throw;
        }
    }

    private static void Place(AnonymousMemory memory, int bitness, ulong address, Action<Assembler>? block)
    {
        if (block is null) return;
        // 16-bit code runs with CS.base = Base: its addresses are offsets in that segment.
        memory.Write(address - Base, Assemble(bitness, bitness == 16 ? address - Base : address, block));
    }

    /// <summary>16-bit code: LGDT, CR0.PE, then a far jump with a 32-bit offset into the flat code segment at <see cref="Code32"/>.</summary>
    public static void EnterProtectedMode(Assembler a)
    {
        ArgumentNullException.ThrowIfNull(a);
        a.lgdt(__[(uint)(GdtPointer - Base)]);
        a.mov(eax, cr0);
        a.or(eax, 1);
        a.mov(cr0, eax);
        // Still 16-bit code until CS is reloaded: the far jump with a 32-bit offset enters the flat code segment.
        a.AddInstruction(Instruction.CreateBranch(Code.Jmp_ptr1632, Code32Selector, (uint)Code32));
    }

    /// <summary>
    /// 32-bit code: CR4.PAE, CR3 = <see cref="Pml4"/>, CR0.PG (EFER.LME is set, so this activates long mode in
    /// compatibility mode), then a far jump into the 64-bit code segment at <see cref="Code64"/>.
    /// </summary>
    public static void EnterLongMode(Assembler a)
    {
        ArgumentNullException.ThrowIfNull(a);
        a.mov(eax, cr4);
        a.or(eax, 0x20); // PAE
        a.mov(cr4, eax);
        a.mov(eax, (uint)Pml4);
        a.mov(cr3, eax);
        a.mov(eax, cr0);
        a.or(eax, unchecked((int)0x8000_0000)); // PG
        a.mov(cr0, eax);
        a.AddInstruction(Instruction.CreateBranch(Code.Jmp_ptr1632, Code64Selector, (uint)Code64));
    }

    /// <summary>Assembles <paramref name="block"/> for <paramref name="bitness"/>-bit code that runs at <paramref name="ip"/>.</summary>
    public static byte[] Assemble(int bitness, ulong ip, Action<Assembler> block)
    {
        ArgumentNullException.ThrowIfNull(block);
        var a = new Assembler(bitness);
        block(a);
        using var stream = new MemoryStream();
        a.Assemble(new StreamCodeWriter(stream), ip);
        return stream.ToArray();
    }

    /// <summary>Writes <paramref name="bytes"/> at guest-physical <paramref name="gpa"/> (inside the 64 KiB).</summary>
    public void Write(ulong gpa, ReadOnlySpan<byte> bytes) => Memory.Write(gpa - Base, bytes);

    /// <summary>Writes <paramref name="value"/> at guest-physical <paramref name="gpa"/> (inside the 64 KiB).</summary>
    public void Write<T>(ulong gpa, T value) where T : unmanaged => Memory.Write(gpa - Base, value);

    private static void WriteTables(AnonymousMemory memory)
    {
        // Flat 4 GiB segments (G=1, limit 0xFFFFF): 32-bit code (D=1), data (B=1), 64-bit code (L=1, D=0), and a
        // 16-bit code segment based at Base with a 64 KiB limit.
        ulong[] gdt = [0, 0x00CF_9A00_0000_FFFF, 0x00CF_9200_0000_FFFF, 0x00AF_9A00_0000_FFFF, Descriptor(Base, 0xFFFF, 0x9A, 0x0)];
        for (int n = 0; n < gdt.Length; n++) memory.Write(Gdt - Base + (ulong)n * 8, gdt[n]);
        memory.Write<ushort>(GdtPointer - Base, GdtLimit);
        memory.Write<uint>(GdtPointer - Base + 2, (uint)Gdt);
        // Identity map of [0, 2 MiB) with one 2 MiB page: P|RW (and PS on the PD entry).
        memory.Write(Pml4 - Base, Pdpt | 3);
        memory.Write(Pdpt - Base, Pd | 3);
        memory.Write(Pd - Base, 0x83UL);
    }

    /// <summary>An 8-byte segment descriptor (Intel SDM Vol. 3A 3.4.5) from base, limit, access byte and flags nibble.</summary>
    private static ulong Descriptor(ulong @base, uint limit, byte access, byte flags) =>
        (limit & 0xFFFFUL) | ((@base & 0xFF_FFFFUL) << 16) | ((ulong)access << 40) | (((ulong)(limit >> 16) & 0xF) << 48) |
        ((ulong)(flags & 0xF) << 52) | (((@base >> 24) & 0xFF) << 56);

    public void Dispose()
    {
        Vcpu.Dispose();
        Slot.Dispose();
        Memory.Dispose();
        Vm.Dispose();
    }
}
