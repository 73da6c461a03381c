// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Emulation.Mmu;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// The C-bit model below the conformance cases (src/KvmSharp.Conformance/Cases/SnpGuestPrivacy.cs): plain SEV has no
/// private memory (the C-bit is stripped, every access reaches the slot's host memory), a VM that is not SEV keeps bit
/// 51 reserved, KVM_PRE_FAULT_MEMORY on SNP decides by the attribute, and the GPA seen by KVM never carries the C-bit.
/// </summary>
public sealed class CbitTests
{
    private const ulong CBit = 1UL << GuestPhysicalMemory.CbitPosition;

    [Fact]
    public void Sev_guest_reads_host_memory_through_a_cbit_pte_and_without_one()
    {
        using var k = new EmulatedKernel(EmulatorConfig.X86_64());
        using var g = new RawGuest(k, KvmConstants.KVM_X86_SEV_VM, sevInit2: true);
        // 4 MiB: encrypted alias of 2 MiB; the code reads the same byte through both and reports their sum.
        g.LongMode(a =>
        {
            a.mov(rax, 0x20_0000 + 0x1000);
            a.mov(bl, __byte_ptr[rax]);
            a.mov(rax, 0x40_0000 + 0x1000);
            a.add(bl, __byte_ptr[rax]);
            a.mov(al, bl);
            a.@out(0x10, al);
            a.hlt();
        });
        g.Write64(RawGuest.Pd + 2 * 8, (CBit | 0x20_0000) | 0x83);
        g.Write(0x20_1000, [0x21]);
        g.RunExpect(KvmExitReason.KVM_EXIT_IO);
        Assert.Equal(0x42, g.IoData[0]);
    }

    [Theory]
    [InlineData(KvmConstants.KVM_X86_DEFAULT_VM)]
    [InlineData(KvmConstants.KVM_X86_SW_PROTECTED_VM)]
    public void Without_sev_pte_bit_51_is_a_reserved_bit_page_fault(ulong vmType)
    {
        using var k = new EmulatedKernel(EmulatorConfig.X86_64());
        using var g = new RawGuest(k, vmType);
        g.LongMode(a => { a.mov(rax, 0x40_0000); a.mov(bl, __byte_ptr[rax]); a.hlt(); });
        g.Write64(RawGuest.Pd + 2 * 8, (CBit | 0x40_0000) | 0x83);
        // No IDT: #PF → #DF → triple fault (KVM_EXIT_SHUTDOWN), CR2 is the read's address; no memory fault exit.
        g.RunExpect(KvmExitReason.KVM_EXIT_SHUTDOWN);
        Assert.Equal(0x40_0000UL, g.Sregs.cr2);
    }

    [Fact]
    public void Snp_prefault_takes_the_access_from_the_attribute_and_caches_it_apart_from_the_other_kind()
    {
        using var k = new EmulatedKernel(EmulatorConfig.X86_64());
        using var g = new RawGuest(k, KvmConstants.KVM_X86_SNP_VM, slot: false);
        var gmem = Raw.CreateGmem(k, g.Vm, 0x1_0000, 0);
        using (gmem)
        {
            Assert.Equal(0, Raw.Region2(k, g.Vm, 0, KvmConstants.KVM_MEM_GUEST_MEMFD, 0x10_0000, 0x1_0000, (ulong)g.Memory.Address, 0, gmem.Number));
            Assert.Equal(0, Raw.VmAttributes(k, g.Vm, 0x10_0000, 0x1000, KvmConstants.KVM_MEMORY_ATTRIBUTE_PRIVATE));
            var memory = GuestMemoryPath.VmOf(k, g.Vm)!.Vcpus[0].Memory;
            // kvm_arch_vcpu_pre_fault_memory: private GFN → private access, shared GFN → shared access.
            Assert.Equal(GpaStatus.Done, memory.Prefault(0x10_0000).Status);
            Assert.Equal(GpaStatus.Done, memory.Prefault(0x10_1000).Status);
            var bytes = new byte[8];
            // The private page is now cached; a shared access (no C-bit) to it must still disagree.
            var r = memory.Read(0x10_0000, bytes);
            Assert.Equal((GpaStatus.MemoryFault, false, 0x10_0000UL), (r.Status, r.Private, r.Gpa));
            r = memory.Read(0x10_1000 | CBit, bytes);
            Assert.Equal((GpaStatus.MemoryFault, true, 0x10_1000UL), (r.Status, r.Private, r.Gpa));
            Assert.Equal(GpaStatus.Done, memory.Read(0x10_0000 | CBit, bytes).Status);
            Assert.Equal(GpaStatus.Done, memory.Read(0x10_1000, bytes).Status);
        }
    }

    [Fact]
    public void Snp_memory_fault_and_mmio_gpas_come_without_the_cbit()
    {
        using var k = new EmulatedKernel(EmulatorConfig.X86_64());
        using var g = new RawGuest(k, KvmConstants.KVM_X86_SNP_VM);
        var memory = GuestMemoryPath.VmOf(k, g.Vm)!.Vcpus[0].Memory;
        var bytes = new byte[4];
        // No memslot: a shared access is MMIO at the GPA KVM sees, a private one a private memory fault.
        var r = memory.Read(0x1_0000_0000, bytes);
        Assert.Equal((GpaStatus.Mmio, 0x1_0000_0000UL), (r.Status, r.Gpa));
        r = memory.Read(0x1_0000_0000 | CBit, bytes);
        Assert.Equal((GpaStatus.MemoryFault, true, 0x1_0000_0000UL), (r.Status, r.Private, r.Gpa));
    }
}
