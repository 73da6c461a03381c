// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using KvmSharp.Abi;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Emulation.Tests;

/// <summary>Every KVM_RUN exit the emulated vCPU produces, as the kvm_run page shows it.</summary>
public sealed class ExitTests
{
    [Fact]
    public void Port_out_and_in_use_the_data_page_and_in_completes_on_the_next_run()
    {
        using var k = new EmulatedKernel();
        using var g = new RawGuest(k);
        g.LongMode(a =>
        {
            a.mov(eax, 0x1122_3344);
            a.mov(dx, 0x3f8);
            a.@out(dx, eax);
            a.@in(ax, 0x60);
            a.hlt();
        });
        g.RunExpect(KvmExitReason.KVM_EXIT_IO);
        Assert.Equal(KvmConstants.KVM_EXIT_IO_OUT, g.Run[KvmRunLayout.io_direction]);
        Assert.Equal(0x3f8, BinaryPrimitives.ReadUInt16LittleEndian(g.Run[KvmRunLayout.io_port..]));
        Assert.Equal(4, g.Run[KvmRunLayout.io_size]);
        Assert.Equal(1u, g.U32(KvmRunLayout.io_count));
        Assert.Equal((ulong)Raw.Page, g.U64(KvmRunLayout.io_data_offset));
        Assert.Equal(0x1122_3344u, BinaryPrimitives.ReadUInt32LittleEndian(g.IoData));

        g.RunExpect(KvmExitReason.KVM_EXIT_IO);
        Assert.Equal(KvmConstants.KVM_EXIT_IO_IN, g.Run[KvmRunLayout.io_direction]);
        Assert.Equal(2, g.Run[KvmRunLayout.io_size]);
        ulong rip = g.Regs.rip;
        BinaryPrimitives.WriteUInt16LittleEndian(g.IoData, 0xabcd);
        g.RunExpect(KvmExitReason.KVM_EXIT_HLT);
        Assert.Equal(0x1122_abcdUL, g.Regs.rax);
        Assert.True(g.Regs.rip > rip);
    }

    [Fact]
    public void Mmio_write_then_read_modify_write_then_read_like_the_host()
    {
        // Same program and exits as the probe on this host: write exits with RIP past the instruction, a read exits
        // at the instruction and completes with kvm_run.mmio.data on the next KVM_RUN.
        using var k = new EmulatedKernel();
        using var g = new RawGuest(k, slot: false);
        Assert.Equal(0, Raw.Region1(k, g.Vm, 0, 0, 0, 0x40_0000, (ulong)g.Memory.Address));
        g.LongMode(a =>
        {
            a.mov(rax, 0x40_0000);
            a.mov(__byte_ptr[rax], 0x12);
            a.inc(__qword_ptr[rax]);
            a.mov(rcx, __qword_ptr[rax]);
            a.hlt();
        });
        g.RunExpect(KvmExitReason.KVM_EXIT_MMIO);
        Assert.Equal(0x40_0000UL, g.U64(KvmRunLayout.mmio_phys_addr));
        Assert.Equal(1u, g.U32(KvmRunLayout.mmio_len));
        Assert.Equal(1, g.Run[KvmRunLayout.mmio_is_write]);
        Assert.Equal(0x12, g.Run[KvmRunLayout.mmio_data]);

        g.RunExpect(KvmExitReason.KVM_EXIT_MMIO);
        Assert.Equal(0, g.Run[KvmRunLayout.mmio_is_write]);
        Assert.Equal(8u, g.U32(KvmRunLayout.mmio_len));
        BinaryPrimitives.WriteUInt64LittleEndian(g.Run[KvmRunLayout.mmio_data..], 0x8877_6655_4433_2211);
        g.RunExpect(KvmExitReason.KVM_EXIT_MMIO);
        Assert.Equal(1, g.Run[KvmRunLayout.mmio_is_write]);
        Assert.Equal(0x8877_6655_4433_2212UL, g.U64(KvmRunLayout.mmio_data));

        g.RunExpect(KvmExitReason.KVM_EXIT_MMIO);
        BinaryPrimitives.WriteUInt64LittleEndian(g.Run[KvmRunLayout.mmio_data..], 42);
        g.RunExpect(KvmExitReason.KVM_EXIT_HLT);
        Assert.Equal(42UL, g.Regs.rcx);
    }

    [Fact]
    public void Hlt_exits_with_rip_after_it()
    {
        using var k = new EmulatedKernel();
        using var g = new RawGuest(k);
        g.LongMode(a => a.hlt());
        g.RunExpect(KvmExitReason.KVM_EXIT_HLT);
        Assert.Equal(RawGuest.CodeGpa + 1, g.Regs.rip);
    }

    [Fact]
    public void Ud2_without_an_IDT_is_a_shutdown_with_rip_at_the_instruction()
    {
        using var k = new EmulatedKernel();
        using var g = new RawGuest(k);
        g.LongMode(a => a.ud2());
        g.RunExpect(KvmExitReason.KVM_EXIT_SHUTDOWN);
        Assert.Equal(RawGuest.CodeGpa, g.Regs.rip);
    }

    [Fact]
    public void An_instruction_outside_the_subset_is_an_emulation_failure_with_its_bytes()
    {
        using var k = new EmulatedKernel();
        using var g = new RawGuest(k);
        g.LongMode(a => a.fsin()); // an x87 transcendental: not in the subset
        g.RunExpect(KvmExitReason.KVM_EXIT_INTERNAL_ERROR);
        Assert.Equal(1u, g.U32(KvmRunLayout.internal_suberror));
        Assert.Equal(8u, g.U32(KvmRunLayout.internal_ndata));
        Assert.Equal(1UL, g.U64(KvmRunLayout.internal_data)); // KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES
        Assert.Equal(2, g.Run[KvmRunLayout.internal_data + 8]); // insn_size: d9 fe
        Assert.Equal(0xd9, g.Run[KvmRunLayout.internal_data + 9]);
        Assert.Equal(0xfe, g.Run[KvmRunLayout.internal_data + 10]);
    }

    [Fact]
    public void Fetch_from_a_gpa_without_memory_is_an_emulation_failure_without_bytes()
    {
        using var k = new EmulatedKernel();
        using var g = new RawGuest(k, slot: false);
        Assert.Equal(0, Raw.Region1(k, g.Vm, 0, 0, 0, 0x40_0000, (ulong)g.Memory.Address));
        g.LongMode(a => { a.mov(rax, 0x40_0000); a.jmp(rax); });
        g.RunExpect(KvmExitReason.KVM_EXIT_INTERNAL_ERROR);
        Assert.Equal(6u, g.U32(KvmRunLayout.internal_ndata));
        Assert.Equal(0x40_0000UL, g.Regs.rip);
    }

    [Fact]
    public void A_memslot_whose_userspace_memory_is_gone_fails_with_EFAULT_and_a_memory_fault_exit()
    {
        using var k = new EmulatedKernel();
        using var g = new RawGuest(k);
        g.LongMode(a => { a.mov(rax, 0x60_0000); a.mov(__byte_ptr[rax], 1); a.hlt(); });
        // A second slot at GPA 6 MiB whose userspace_addr points at nothing mapped (page 1 of the address space).
        Assert.Equal(0, Raw.Region1(k, g.Vm, 1, 0, 0x60_0000, 0x20_0000, 0x1000));
        g.Write64(RawGuest.Pd + 3 * 8, 0x60_0000 | 0x83);
        Assert.Equal(Raw.EFAULT, g.RunOnce());
        Assert.Equal(KvmExitReason.KVM_EXIT_MEMORY_FAULT, g.ExitReason);
        Assert.Equal(0x60_0000UL, g.U64(KvmRunLayout.memory_fault_gpa));
        Assert.Equal((ulong)Raw.Page, g.U64(KvmRunLayout.memory_fault_size));
        Assert.Equal(0UL, g.U64(KvmRunLayout.memory_fault_flags));
    }
}
