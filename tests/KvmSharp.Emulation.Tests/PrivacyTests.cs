// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Memory;
using static Iced.Intel.AssemblerRegisters;
using static KvmSharp.Kernel.LinuxConstants;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// KVM_EXIT_MEMORY_FAULT (KVM_RUN = -EFAULT): a private access where the slot has no guest_memfd (SW_PROTECTED uses
/// the attributes), an SNP guest's C-bit disagreeing with the attributes, and guest_memfd released under a slot.
/// </summary>
public sealed class PrivacyTests
{
    private const ulong PrivateFlag = KvmConstants.KVM_MEMORY_EXIT_FLAG_PRIVATE;

    private static void AssertMemoryFault(RawGuest g, ulong gpa, ulong flags, long errno = Raw.EFAULT)
    {
        Assert.Equal(errno, g.RunOnce());
        Assert.Equal(KvmExitReason.KVM_EXIT_MEMORY_FAULT, g.ExitReason);
        Assert.Equal(gpa, g.U64(KvmRunLayout.memory_fault_gpa));
        Assert.Equal((ulong)Raw.Page, g.U64(KvmRunLayout.memory_fault_size));
        Assert.Equal(flags, g.U64(KvmRunLayout.memory_fault_flags));
    }

    [Fact]
    public void Sw_protected_private_gfn_in_a_slot_without_guest_memfd_is_a_private_memory_fault()
    {
        using var k = new EmulatedKernel(EmulatorConfig.X86_64());
        using var g = new RawGuest(k, KvmConstants.KVM_X86_SW_PROTECTED_VM);
        g.LongMode(a => { a.mov(rax, 0x30_0000); a.mov(bl, __byte_ptr[rax]); a.hlt(); });
        // Shared: the read works.
        g.RunExpect(KvmExitReason.KVM_EXIT_HLT);
        g.LongMode(a => { a.mov(rax, 0x30_0000 + 0x10); a.mov(bl, __byte_ptr[rax]); a.hlt(); });
        Assert.Equal(0, Raw.VmAttributes(k, g.Vm, 0x30_0000, (ulong)Raw.Page, KvmConstants.KVM_MEMORY_ATTRIBUTE_PRIVATE));
        AssertMemoryFault(g, 0x30_0000, PrivateFlag);
    }

    [Fact]
    public void Default_vm_has_no_private_accesses()
    {
        using var k = new EmulatedKernel(EmulatorConfig.X86_64());
        using var g = new RawGuest(k, KvmConstants.KVM_X86_DEFAULT_VM);
        g.LongMode(a => { a.mov(rax, 0x30_0000); a.mov(bl, __byte_ptr[rax]); a.hlt(); });
        // PRIVATE is not a supported attribute on a default VM, so nothing can make the access private.
        Assert.Equal(Raw.EINVAL, Raw.VmAttributes(k, g.Vm, 0x30_0000, (ulong)Raw.Page, KvmConstants.KVM_MEMORY_ATTRIBUTE_PRIVATE));
        g.RunExpect(KvmExitReason.KVM_EXIT_HLT);
    }

    /// <summary>
    /// SNP with in-place conversion (v8): all memory is one guest_memfd, private except page 0x300000. The C-bit (bit
    /// 51) in the guest's page-table entry marks a private access, its absence a shared one (svm.c npf_interception:
    /// PFERR_GUEST_ENC_MASK → PFERR_PRIVATE_ACCESS); fetches and table walks are private whatever the entries say. The
    /// code runs through the C-bit alias at 2 MiB; 4 MiB is a shared (no C-bit) alias of the code's 2 MiB. SNP because
    /// the test sets the vCPU's registers, which an SNP VMM does before KVM_SEV_SNP_LAUNCH_FINISH while a TD's vCPU
    /// refuses them (X86/ProtectedState.cs).
    /// </summary>
    [Theory]
    [InlineData(0x30_0000UL, 0x30_0000UL, PrivateFlag)]       // private access (C-bit) to a shared page
    [InlineData(0x40_0000UL, 0x20_0000UL, 0UL)]               // shared access (no C-bit) to the private code page
    [InlineData(0x50_0000UL, 0UL, 0UL)]                       // shared access to the shared page: no fault
    public void Snp_cbit_disagreeing_with_the_attributes_is_a_memory_fault(ulong linear, ulong faultGpa, ulong flags)
    {
        using var k = new EmulatedKernel(EmulatorConfig.X86_64(inPlaceConversion: true));
        using var g = new RawGuest(k, KvmConstants.KVM_X86_SNP_VM, slot: false, sevInit2: true);
        Assert.True(k.Open("/dev/sev", O_RDWR, out var sev) >= 0);
        var gmem = Raw.CreateGmem(k, g.Vm, RawGuest.MemorySize, KvmConstants.GUEST_MEMFD_FLAG_MMAP | KvmConstants.GUEST_MEMFD_FLAG_INIT_SHARED);
        using (sev)
        using (gmem)
        {
            const ulong SharedPage = 0x30_0000;
            ulong page = (ulong)Raw.Page;
            Assert.Equal(0, Raw.Region2(k, g.Vm, 0, KvmConstants.KVM_MEM_GUEST_MEMFD, 0, RawGuest.MemorySize, 0, 0, gmem.Number));
            // Build the guest in the anonymous memory: the shared page is copied in through the mapping, the rest is
            // launched into private memory by the firmware, validated (SNP_LAUNCH_UPDATE), as an SNP guest's image is.
            g.LongMode(a => { a.mov(rax, linear); a.mov(bl, __byte_ptr[rax]); a.hlt(); });
            const ulong CBit = 1UL << 51;
            g.Write64(RawGuest.Pd + 1 * 8, (CBit | 0x20_0000) | 0x83); // 2 MiB, encrypted (the code runs here)
            g.Write64(RawGuest.Pd + 2 * 8, 0x20_0000 | 0x83);          // 4 MiB → the code's 2 MiB, not encrypted
            Assert.Equal(0, MappedRegion.Map(k, gmem, RawGuest.MemorySize, PROT_READ | PROT_WRITE, MAP_SHARED, 0, out var host));
            using (host) g.Memory.GetSpan((int)SharedPage, (int)page).CopyTo(host!.GetSpan((int)SharedPage, (int)page));
            Assert.Equal(0, Raw.Convert(k, gmem, 0, SharedPage, toPrivate: true));
            Assert.Equal(0, Raw.Convert(k, gmem, SharedPage + page, RawGuest.MemorySize - SharedPage - page, toPrivate: true));
            var start = new kvm_sev_snp_launch_start { policy = 1UL << 17 }; // bit 17 must be one
            Assert.Equal(0, Raw.SevCommand(k, g.Vm, KvmMemoryEncrypt.KVM_SEV_SNP_LAUNCH_START, ref start, sev!.Number));
            foreach (var (gpa, size) in new[] { (0UL, SharedPage), (SharedPage + page, RawGuest.MemorySize - SharedPage - page) })
            {
                var update = new kvm_sev_snp_launch_update
                {
                    gfn_start = gpa / page, uaddr = (ulong)g.Memory.Address + gpa, len = size, type = KvmMemoryEncrypt.KVM_SEV_SNP_PAGE_TYPE_NORMAL,
                };
                Assert.Equal(0, Raw.SevCommand(k, g.Vm, KvmMemoryEncrypt.KVM_SEV_SNP_LAUNCH_UPDATE, ref update, sev.Number));
            }
            if (linear == 0x50_0000)
            {
                // 4 MiB + 1 MiB through the shared alias of 2 MiB → GPA 0x300000, the shared page.
                g.RunExpect(KvmExitReason.KVM_EXIT_HLT);
                return;
            }
            AssertMemoryFault(g, faultGpa, flags);
        }
    }

    [Fact]
    public void Guest_access_after_the_guest_memfd_was_released_is_EFAULT()
    {
        using var k = new EmulatedKernel();
        using var g = new RawGuest(k, slot: false);
        // Code in plain memory at GPA 0; data in a guest_memfd slot at 0x20000.
        Assert.Equal(0, Raw.Region1(k, g.Vm, 0, 0, 0, 0x2_0000, (ulong)g.Memory.Address));
        var gmem = Raw.CreateGmem(k, g.Vm, 0x1_0000, KvmConstants.GUEST_MEMFD_FLAG_MMAP | KvmConstants.GUEST_MEMFD_FLAG_INIT_SHARED);
        Assert.Equal(0, Raw.Region2(k, g.Vm, 1, KvmConstants.KVM_MEM_GUEST_MEMFD, 0x2_0000, 0x1_0000, 0, 0, gmem.Number));
        g.RealMode(a =>
        {
            a.mov(ax, 0x2000);
            a.mov(ds, ax);
            a.mov(al, __byte_ptr[0x10]);
            a.@out(0x10, al);
            a.mov(al, __byte_ptr[0x10]);
            a.hlt();
        }, baseGpa: 0);
        g.RunExpect(KvmExitReason.KVM_EXIT_IO);
        gmem.Dispose(); // kvm_gmem_release: slot->gmem.file = NULL
        AssertMemoryFault(g, 0x2_0000, 0);
    }
}
