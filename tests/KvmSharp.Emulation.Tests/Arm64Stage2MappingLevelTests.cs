// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Arm64;
using KvmSharp.Conformance.Guests.Arm64;
using KvmSharp.Kernel;
using static KvmSharp.Vmm.Arch.Arm64.A64Register;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// The size of the stage-2 leaf an arm64 guest's abort installs (Arm64/Stage2MappingSize.cs, as 6.18's
/// arch/arm64/kvm/mmu.c decides it), read back with GuestMappingInspection.LastFault: gmem_abort maps PAGE_SIZE;
/// user_mem_abort maps a 2 MiB block over a PMD-mapped THP (transparent_hugepage_adjust) when the slot's
/// userspace_addr and GPA agree modulo 2 MiB and the block lies in the slot (fault_supports_stage2_huge_mapping), and
/// PAGE_SIZE while the slot logs dirty pages (logging_active → force_pte). Emulator only: the real kernel here is
/// x86 and shows no stage-2 sizes.
/// </summary>
public sealed class Arm64Stage2MappingLevelTests
{
    private const ulong K4 = 0x1000, M2 = 2UL << 20, Base = 0x4000_0000;

    /// <summary>A guest that stores to <paramref name="gpa"/> (MMU off: VA = IPA) and reports done.</summary>
    private static Arm64TestVm Storing(ulong gpa) => new(a =>
    {
        a.MovImm(X(0), gpa);
        a.MovImm(X(1), 0x5A5A);
        a.Str(X(1), X(0));
        Arm64Guest.Ucall(a, Arm64Guest.UcallDone);
    });

    private static void RunToDone(Arm64TestVm s)
    {
        var exit = s.AddVcpu().RunBounded();
        Assert.Equal(KvmExitReason.KVM_EXIT_MMIO, exit.Reason);
        Assert.Equal(Arm64Guest.UcallMmioGpa, exit.MmioAddress);
        Assert.Equal(Arm64Guest.UcallDone, BitConverter.ToUInt64(exit.MmioData));
    }

    private static GuestFaultMapping Mapped(Arm64TestVm s, ulong gpa)
    {
        long r = GuestMappingInspection.LastFault(s.Kernel, s.Vm.Handle, gpa, out var m);
        Assert.True(r == 0, $"nothing maps 0x{gpa:X} (r={r})");
        return m;
    }

    /// <summary>
    /// 4 MiB of host memory whose first 2 MiB-aligned 4 MiB were madvised MADV_HUGEPAGE (the emulated host's THP runs in
    /// "madvise" mode: a PMD-mapped THP); returns the offset of that aligned part.
    /// </summary>
    private static ulong HugeAdvised(Arm64TestVm s, AnonymousMemory memory)
    {
        ulong address = (ulong)memory.Address;
        ulong offset = ((address + M2 - 1) & ~(M2 - 1)) - address;
        Assert.Equal(0, s.Kernel.Madvise((nint)(address + offset), 2 * M2, LinuxConstants.MADV_HUGEPAGE));
        return offset;
    }

    [Fact]
    public void A_guest_memfd_slot_maps_4k()
    {
        using var s = Storing(Base + M2 + 0x5008);
        using var gmem = s.Vm.CreateGuestMemfd(2 * M2, GuestMemfdFlags.Mmap | GuestMemfdFlags.InitShared);
        using var slot = s.Vm.AddGuestMemfdSlot(1, Base, 2 * M2, gmem);
        Assert.Equal(-(long)Errno.ENOENT, GuestMappingInspection.LastFault(s.Kernel, s.Vm.Handle, Base + M2 + 0x5008, out _));
        RunToDone(s);
        // gmem_abort: kvm_pgtable_stage2_map(pgt, fault_ipa, PAGE_SIZE, …) though the slot is 2 MiB aligned.
        Assert.Equal(new GuestFaultMapping(Base + M2 + 0x5000, 12, Private: false, GmemOrder: 0), Mapped(s, Base + M2 + 0x5008));
        Assert.Equal(-(long)Errno.ENOENT, GuestMappingInspection.LastFault(s.Kernel, s.Vm.Handle, Base + M2 + 0x6000, out _));
    }

    [Fact]
    public void An_aligned_slot_over_a_thp_maps_a_2m_block()
    {
        using var s = Storing(Base + M2 + 0x3008);
        using var memory = s.Vm.AllocateMemory(6 * M2);
        ulong offset = HugeAdvised(s, memory);
        using var slot = s.Vm.AddMemorySlot(1, Base, memory, offset, 2 * M2);
        RunToDone(s);
        // transparent_hugepage_adjust: fault_supports_stage2_huge_mapping(memslot, hva, PMD_SIZE) and
        // get_user_mapping_size ≥ PMD_SIZE → the IPA masked with PMD_MASK, PMD_SIZE.
        Assert.Equal(new GuestFaultMapping(Base + M2, 21, Private: false, GmemOrder: 0), Mapped(s, Base + M2 + 0x3008));
        Assert.Equal(Base + M2, Mapped(s, Base + 2 * M2 - K4).Gpa); // the one block covers the whole 2 MiB
        Assert.Equal(0x5A5AUL, memory.Read<ulong>(offset + M2 + 0x3008));
        // The code page lives in memory nobody madvised: get_user_mapping_size < PMD_SIZE → PAGE_SIZE.
        Assert.Equal(12, Mapped(s, Arm64Guest.CodeGpa).PageShift);
    }

    [Fact]
    public void A_slot_whose_userspace_addr_and_gpa_differ_modulo_2m_maps_4k()
    {
        using var s = Storing(Base + M2 + 0x3008);
        using var memory = s.Vm.AllocateMemory(6 * M2);
        ulong offset = HugeAdvised(s, memory);
        // userspace_addr ≡ 4 KiB (mod 2 MiB), GPA ≡ 0: the host's THP no longer lines up with a stage-2 block.
        using var slot = s.Vm.AddMemorySlot(1, Base, memory, offset + K4, 2 * M2);
        RunToDone(s);
        // fault_supports_stage2_huge_mapping: "(gpa_start & (map_size - 1)) != (uaddr_start & (map_size - 1))" →
        // false, so transparent_hugepage_adjust returns PAGE_SIZE.
        Assert.Equal(new GuestFaultMapping(Base + M2 + 0x3000, 12, Private: false, GmemOrder: 0), Mapped(s, Base + M2 + 0x3008));
    }

    [Fact]
    public void A_block_that_would_stick_out_of_the_slot_maps_4k()
    {
        using var s = Storing(Base + 0x3008);
        using var memory = s.Vm.AllocateMemory(6 * M2);
        ulong offset = HugeAdvised(s, memory);
        // Aligned alike, but the slot holds only 1 MiB of the THP's 2 MiB.
        using var slot = s.Vm.AddMemorySlot(1, Base, memory, offset, M2 / 2);
        RunToDone(s);
        // fault_supports_stage2_huge_mapping: "(hva & ~(map_size - 1)) + map_size <= uaddr_end" fails.
        Assert.Equal(12, Mapped(s, Base + 0x3008).PageShift);
    }

    [Fact]
    public void Dirty_logging_maps_4k_and_a_later_fault_without_it_maps_the_block()
    {
        // The guest stores to [X0]: the host picks the address before each run.
        using var s = new Arm64TestVm(a =>
        {
            a.MovImm(X(1), 0x5A5A);
            a.Str(X(1), X(0));
            Arm64Guest.Ucall(a, Arm64Guest.UcallDone);
        });
        using var memory = s.Vm.AllocateMemory(6 * M2);
        ulong offset = HugeAdvised(s, memory);
        using var slot = s.Vm.AddMemorySlot(1, Base, memory, offset, 2 * M2, MemorySlotFlags.LogDirtyPages);
        var vcpu = s.AddVcpu();
        vcpu.SetX(0, Base + M2 + 0x3008);
        Assert.Equal(KvmExitReason.KVM_EXIT_MMIO, vcpu.RunBounded().Reason);
        // user_mem_abort: memslot_is_logging (a dirty bitmap, not READONLY) → "force_pte = true; vma_shift = PAGE_SHIFT".
        Assert.Equal(new GuestFaultMapping(Base + M2 + 0x3000, 12, Private: false, GmemOrder: 0), Mapped(s, Base + M2 + 0x3008));
        Assert.Equal(-(long)Errno.ENOENT, GuestMappingInspection.LastFault(s.Kernel, s.Vm.Handle, Base + M2 + 0x4000, out _));
        // Logging off zaps nothing (the 4 KiB leaf stays); an abort on another page of the block maps PMD_SIZE, and
        // kvm_pgtable_stage2_map replaces the table holding the old leaf with the block.
        slot.SetDirtyLogging(false);
        Assert.Equal(12, Mapped(s, Base + M2 + 0x3008).PageShift);
        vcpu.SetX(0, Base + M2 + 0x4008);
        vcpu.SetPc(Arm64Guest.CodeGpa);
        Assert.Equal(KvmExitReason.KVM_EXIT_MMIO, vcpu.RunBounded().Reason);
        Assert.Equal(new GuestFaultMapping(Base + M2, 21, Private: false, GmemOrder: 0), Mapped(s, Base + M2 + 0x3008));
    }

    [Fact]
    public void Madv_nohugepage_over_part_of_a_block_maps_4k()
    {
        using var s = Storing(Base + M2 + 0x3008);
        using var memory = s.Vm.AllocateMemory(6 * M2);
        ulong offset = HugeAdvised(s, memory);
        // MADV_NOHUGEPAGE (15) clears VM_HUGEPAGE over one page of the second block: its THP is gone in the model.
        Assert.Equal(0, s.Kernel.Madvise((nint)((ulong)memory.Address + offset + M2), K4, 15));
        using var slot = s.Vm.AddMemorySlot(1, Base, memory, offset, 2 * M2);
        RunToDone(s);
        Assert.Equal(12, Mapped(s, Base + M2 + 0x3008).PageShift);
    }
}
