// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using Iced.Intel;
using KvmSharp.Emulation.Mmu;
using KvmSharp.Vmm;
using KvmSharp.Vmm.Arch.X86_64;
using KvmSharp.Vmm.GuestAbi;
using KvmSharp.Vmm.Guests;
using KvmSharp.Vmm.Loader;
using KvmSharp.Vmm.Snapshots;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// An SEV-SNP micro-VM (docs/sandbox.md, "SEV-SNP micro-VMs"): KVM_SEV_INIT2 before the vCPU, page tables and CR3 with
/// the C-bit, and at the first call the launch — the private ranges made private on the guest_memfd, launched in place
/// (SNP_LAUNCH_UPDATE with source 0, "guest_memfd: In-place conversion support" v8) and SNP_LAUNCH_FINISH, which seals
/// the registers. Runs on EmulatorConfig.X86_64(inPlaceConversion: true): on the 6.18 preset an SNP VM's guest_memfd
/// lacks MMAP|INIT_SHARED (kvm_arch_supports_gmem_init_shared is false for a VM with private memory), so the host
/// could not write the image into memory that is then launched in place; no kernel on this machine has SNP at all.
/// </summary>
public sealed class SnpMicroVmTests
{
    private static EmulatedKernel InPlaceConversionKernel() => new(EmulatorConfig.X86_64(inPlaceConversion: true));

    private static MicroVm CreateSnp(Kvm kvm, MicroVmOptions? options = null, GuestImage? image = null) =>
        MicroVm.Create(image ?? Hello.Image(), (options ?? new MicroVmOptions()) with { Kvm = kvm, VmType = VmType.Snp, Timeout = TimeSpan.FromSeconds(20) });

    /// <summary><c>cr3()</c>: returns CR3. <c>cpuid(leaf)</c>: hands back EAX, EBX, ECX, EDX (4 × u32) in the call data as the call's output.</summary>
    private static GuestImage CpuidGuest()
    {
        var p = new GuestProgram();
        var a = p.Asm;
        Label start = p.Export("_start");
        Label cpuid = p.Export("cpuid");
        Label cr3 = p.Export("cr3");
        p.Place(ref start);
        p.ExitWith(0);
        p.Place(ref cr3);
        a.mov(rax, AssemblerRegisters.cr3);
        a.ret();
        p.Place(ref cpuid);
        a.push(rbx);
        a.mov(eax, edi);
        a.xor(ecx, ecx);
        a.cpuid();
        a.mov(r8, Layout.CallData);
        a.mov(__dword_ptr[r8], eax);
        a.mov(__dword_ptr[r8 + 4], ebx);
        a.mov(__dword_ptr[r8 + 8], ecx);
        a.mov(__dword_ptr[r8 + 12], edx);
        a.mov(r9, CallRegion.Address(CallRegion.OutputPtr));
        a.mov(__qword_ptr[r9], r8);
        a.mov(__qword_ptr[r9 + 8], 16);
        a.pop(rbx);
        a.ret();
        return p.Build(start);
    }

    private static uint[] Leaf(CallResult r)
    {
        Assert.True(r.IsSuccess, r.ToString());
        byte[] o = r.Output.ToArray();
        return [.. Enumerable.Range(0, 4).Select(i => BinaryPrimitives.ReadUInt32LittleEndian(o.AsSpan(i * 4)))];
    }

    [Fact]
    public void Hello_prints_and_exits_0_on_an_snp_micro_vm_and_leaves_no_fd_open()
    {
        using var k = InPlaceConversionKernel();
        using (var kvm = Kvm.Open(k, proposals: k.Config.Proposals))
        using (var vm = CreateSnp(kvm))
        {
            Assert.False(vm.IsSealed);
            var r = vm.Run();
            Assert.True(r.Outcome == GuestOutcome.Exit && r.Status == 0, r.ToString() + r.Console);
            Assert.Equal(Hello.Greeting, r.Console);
            Assert.True(vm.IsSealed);
        }
        Assert.Equal(0, k.LiveVmCount);
        Assert.Equal(0, k.OpenFdCount);
    }

    [Fact]
    public void Code_data_and_page_tables_are_private_and_only_the_host_shared_regions_are_shared()
    {
        using var k = InPlaceConversionKernel();
        using var kvm = Kvm.Open(k, proposals: k.Config.Proposals);
        using var vm = CreateSnp(kvm);
        // Before the launch everything is shared: the host writes boot state and image through the mapping.
        Assert.True(vm.Memory.IsShared(0, vm.Memory.Size));
        ulong entry = vm.Image.Entry;
        byte firstCodeByte = vm.Memory.Read<byte>(entry);

        Assert.True(vm.Run().IsSuccess);

        foreach (ulong gpa in new[] { entry, Layout.ImageBase, Layout.Pml4, Layout.Pt, Layout.Gdt, Layout.Trampoline, Layout.StackBottom,
                     Layout.ExceptionHandlers, Layout.Idt, Layout.ExceptionStack, vm.Memory.Size - Layout.PageSize })
        {
            Assert.False(vm.Memory.IsShared(gpa, 1), $"0x{gpa:X} should be private");
            // The checked mapping refuses a private page with a typed exception, never a SIGBUS.
            var fault = Assert.Throws<GuestMemoryFaultException>(() => vm.Memory.Read<byte>(gpa));
            Assert.Equal(GuestMemoryFault.PrivatePage, fault.Fault);
        }
        Assert.NotEqual(0, firstCodeByte);
        // The call region with the host-call block, the call data and the exception block stay shared and readable.
        Assert.True(vm.Memory.IsShared(Layout.CallRegion, Layout.CallDataEnd - Layout.CallRegion));
        Assert.True(vm.Memory.IsShared(Layout.ExceptionBlock, Layout.PageSize));
        Assert.Equal(CallRegion.MagicValue, vm.Memory.Read<uint>(CallRegion.Address(CallRegion.Magic)));
        vm.Memory.Write(Layout.CallData, 0x1234UL);
        Assert.Equal(0x1234UL, vm.Memory.Read<ulong>(Layout.CallData));
    }

    [Fact]
    public void The_page_tables_and_cr3_carry_the_cbit_except_for_the_shared_pages()
    {
        using var k = InPlaceConversionKernel();
        using var kvm = Kvm.Open(k, proposals: k.Config.Proposals);
        using var vm = CreateSnp(kvm, new MicroVmOptions { MemorySize = 2 * Layout.LargePageSize });
        const ulong CBit = 1UL << GuestPhysicalMemory.CbitPosition;
        Assert.Equal(CBit, 1UL << GuestCpuid.CbitPosition(kvm)!.Value);
        ulong Pte(ulong gpa) => vm.Memory.Read<ulong>(Layout.Pt + gpa / Layout.PageSize * 8);
        Assert.Equal(CBit, vm.Memory.Read<ulong>(Layout.Pml4) & CBit);
        Assert.Equal(CBit, Pte(Layout.Trampoline) & CBit);
        Assert.Equal(CBit, Pte(Layout.ImageBase) & CBit);
        Assert.Equal(0UL, Pte(Layout.CallRegion) & CBit);
        Assert.Equal(0UL, Pte(Layout.CallData) & CBit);
        Assert.Equal(0UL, Pte(Layout.ExceptionBlock) & CBit);
        Assert.Equal(CBit, Pte(Layout.ExceptionStack) & CBit);
        Assert.Equal(CBit, vm.Memory.Read<ulong>(Layout.Pd + 8) & CBit); // the 2 MiB page above the PT's range
    }

    [Fact]
    public void An_snp_guest_sees_leaf_0x8000001F_with_its_cbit_position()
    {
        using var k = InPlaceConversionKernel();
        using var kvm = Kvm.Open(k, proposals: k.Config.Proposals);
        using var vm = CreateSnp(kvm, image: CpuidGuest());
        uint[] leaf = Leaf(vm.Call("cpuid", GuestCpuid.SevLeaf));
        Assert.Equal((uint)GuestPhysicalMemory.CbitPosition, leaf[1] & 0x3f);
        Assert.NotEqual(0u, leaf[0]);
    }

    [Fact]
    public void An_snp_guest_runs_with_the_cbit_in_cr3()
    {
        using var k = InPlaceConversionKernel();
        using var kvm = Kvm.Open(k, proposals: k.Config.Proposals);
        using var vm = CreateSnp(kvm, image: CpuidGuest());
        var r = vm.Call("cr3");
        Assert.True(r.IsSuccess, r.ToString());
        Assert.Equal(Layout.Pml4 | (1UL << GuestPhysicalMemory.CbitPosition), r.Value);
    }

    [Fact]
    public void After_its_first_call_it_still_takes_calls_but_reset_and_snapshot_give_typed_refusals_and_no_fd_leaks()
    {
        using var k = InPlaceConversionKernel();
        using (var kvm = Kvm.Open(k, proposals: k.Config.Proposals))
        using (var vm = CreateSnp(kvm))
        {
            // Before the launch a snapshot is refused already: its pages are to be launched, its registers sealed.
            Assert.Equal(SnapshotRefusal.ProtectedGuest, Assert.Throws<MicroVmSnapshotException>(() => vm.Snapshot()).Reason);
            var r = vm.Call("greet");
            Assert.True(r.IsSuccess, r.ToString());
            Assert.Equal((ulong)Hello.Greeting.Length, r.Value);
            Assert.Equal(0UL, r.Rip); // sealed: KVM_GET_REGS is EINVAL, the RIP is not known
            Assert.True(vm.IsSealed);

            // The dispatcher takes the next call (the host wrote the request and resumed the vCPU).
            var again = vm.Call("greet");
            Assert.True(again.IsSuccess, again.ToString());
            Assert.Equal(Hello.Greeting, again.Console);
            Assert.False(vm.IsFaulted);

            var reset = Assert.Throws<MicroVmException>(vm.Reset);
            Assert.Contains("MicroVm.Reset", reset.Message, StringComparison.Ordinal);
            Assert.Contains("SNP_LAUNCH_FINISH sealed", reset.Message, StringComparison.Ordinal);
            Assert.Equal(SnapshotRefusal.ProtectedGuest, Assert.Throws<MicroVmSnapshotException>(() => vm.Snapshot()).Reason);
            // Refusals change nothing: the micro-VM still takes calls.
            Assert.True(vm.Call("greet").IsSuccess);
        }
        Assert.Equal(0, k.LiveVmCount);
        Assert.Equal(0, k.OpenFdCount);
    }

    [Fact]
    public void The_trampoline_page_of_an_snp_micro_vm_holds_the_dispatcher_and_the_memory_size_before_the_launch()
    {
        using var k = InPlaceConversionKernel();
        using var kvm = Kvm.Open(k, proposals: k.Config.Proposals);
        using var vm = CreateSnp(kvm, new MicroVmOptions { MemorySize = 2 * Layout.LargePageSize });
        byte[] page = new byte[SnpDispatcher.Bytes.Length];
        vm.Memory.Read(Layout.Trampoline, page);
        Assert.Equal(SnpDispatcher.Bytes.ToArray(), page);
        Assert.Equal(vm.Memory.Size, vm.Memory.Read<ulong>(SnpDispatcher.EntryLimit));
        Assert.NotEqual(Trampoline.Bytes.ToArray(), page[..Trampoline.Bytes.Length]);
        Assert.InRange(SnpDispatcher.Dispatch, Layout.Trampoline + 1, SnpDispatcher.EntryLimit - 1);

        // A non-SNP micro-VM keeps the plain trampoline.
        using var plain = MicroVm.Create(Hello.Image(), new MicroVmOptions { Kvm = kvm, Timeout = TimeSpan.FromSeconds(20) });
        byte[] trampoline = new byte[Trampoline.Bytes.Length];
        plain.Memory.Read(Layout.Trampoline, trampoline);
        Assert.Equal(Trampoline.Bytes.ToArray(), trampoline);
        Assert.Equal(0UL, plain.Memory.Read<ulong>(SnpDispatcher.EntryLimit));
    }

    [Fact]
    public void A_pool_drops_a_sealed_snp_micro_vm_on_return_and_rents_out_a_fresh_one()
    {
        using var k = InPlaceConversionKernel();
        using (var kvm = Kvm.Open(k, proposals: k.Config.Proposals))
        using (var pool = new MicroVmPool(Hello.Image(), new MicroVmOptions { Kvm = kvm, VmType = VmType.Snp, Timeout = TimeSpan.FromSeconds(20) }, 1))
        {
            for (int use = 0; use < 2; use++)
            {
                MicroVm vm = pool.Rent();
                Assert.False(vm.IsSealed);
                Assert.True(vm.Run().IsSuccess);
                pool.Return(vm);
                Assert.True(vm.IsDisposed);
            }
        }
        Assert.Equal(0, k.OpenFdCount);
    }

    [Fact]
    public void Options_an_snp_micro_vm_cannot_honour_are_refused_at_creation_and_leave_nothing_open()
    {
        using var k = InPlaceConversionKernel();
        using (var kvm = Kvm.Open(k, proposals: k.Config.Proposals))
        {
            var trace = Assert.Throws<MicroVmException>(() => CreateSnp(kvm, new MicroVmOptions { TraceInstructions = 16 }));
            Assert.Contains("TraceInstructions", trace.Message, StringComparison.Ordinal);
            var cpuid = Assert.Throws<MicroVmException>(() => CreateSnp(kvm, new MicroVmOptions { Cpuid = CpuidPolicy.None }));
            Assert.Contains("0x8000001F", cpuid.Message, StringComparison.Ordinal);
            var host = Assert.Throws<MicroVmException>(() => CreateSnp(kvm, new MicroVmOptions { Memory = GuestMemoryBacking.HostMemory }));
            Assert.Contains("needs guest_memfd", host.Message, StringComparison.Ordinal);
            Assert.Equal(0, k.LiveVmCount);
        }
        Assert.Equal(0, k.OpenFdCount);
    }

    [Fact]
    public void On_the_6_18_preset_an_snp_micro_vm_is_refused_naming_the_missing_guest_memfd_flags()
    {
        using var k = new EmulatedKernel(EmulatorConfig.X86_64());
        using (var kvm = Kvm.Open(k, proposals: k.Config.Proposals))
        {
            var e = Assert.Throws<MicroVmException>(() => CreateSnp(kvm));
            Assert.Contains("MMAP|INIT_SHARED", e.Message, StringComparison.Ordinal);
            Assert.Equal(0, k.LiveVmCount);
        }
        Assert.Equal(0, k.OpenFdCount);
    }

    [Fact]
    public void A_micro_vm_on_a_non_sev_guest_sees_leaf_0x8000001F_zeroed()
    {
        using var k = InPlaceConversionKernel();
        using var kvm = Kvm.Open(k, proposals: k.Config.Proposals);
        // The kernel offers the leaf (a config with SEV VM types), with the C-bit position.
        Assert.Contains(kvm.GetSupportedCpuid(), e => e.Function == GuestCpuid.SevLeaf && e.Ebx != 0);
        foreach (VmType type in new[] { VmType.Default, VmType.SwProtected })
        {
            using var vm = MicroVm.Create(CpuidGuest(), new MicroVmOptions { Kvm = kvm, VmType = type, Timeout = TimeSpan.FromSeconds(20) });
            Assert.Equal(new uint[4], Leaf(vm.Call("cpuid", GuestCpuid.SevLeaf)));
            // The highest extended leaf is still the kernel's: the leaf is there, zeroed, as QEMU does.
            Assert.True(Leaf(vm.Call("cpuid", 0x8000_0000))[0] >= GuestCpuid.SevLeaf);
        }
    }
}
