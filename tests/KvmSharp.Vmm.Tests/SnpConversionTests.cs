// SPDX-License-Identifier: MIT
using Iced.Intel;
using KvmSharp.Abi;
using KvmSharp.Vmm.Arch.X86_64;
using KvmSharp.Vmm.GuestAbi;
using KvmSharp.Vmm.Guests;
using KvmSharp.Vmm.HostCalls;
using KvmSharp.Vmm.Loader;
using KvmSharp.Vmm.Tests.CGuest;
using KvmSharp.Vmm.Tests.Infrastructure;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Vmm.Tests;

/// <summary>
/// An SEV-SNP micro-VM's guest makes its own pages shared and private again the SNP way (Arch/X86_64/SnpPageState):
/// a call to <see cref="Layout.SnpMapGpaRange"/> asks with a GHCB page-state change (SVM_VMGEXIT_PSC), which the
/// emulated kernel turns into KVM_EXIT_HYPERCALL(KVM_HC_MAP_GPA_RANGE) per merged range (sev.c snp_begin_psc), served by
/// the VMM's MemoryConversion; then the runtime flips the pages' C-bit in the page tables. Runs on the emulated kernel
/// with in-place conversion, the only kernel here with SNP.
/// </summary>
public sealed class SnpConversionTests
{
    private const ulong Page = SnpMicroVm.ConvertiblePage;

    private const uint PeekId = 1;
    private const ulong Value = 0x1122_3344_5566_7788;

    /// <summary>peek (id 1): the u64 at arg0 (a host function given a guest pointer).</summary>
    private static HostFunctions Peek()
    {
        var functions = new HostFunctions();
        functions.Add(PeekId, "peek", c => c.Read<ulong>(c.Args[0]));
        return functions;
    }

    /// <summary>
    /// <c>map(gpa, pages, attributes)</c>: a tail call of the runtime's page-state change. <c>map_keeps()</c>: the same
    /// with RBX, RBP, R12–R15 set to markers; returns RAX, or 0xBAD when a marker changed. <c>poke(gpa, value)</c>,
    /// <c>peek(gpa)</c>: the guest's own store and load. <c>pte(gpa)</c> / <c>pde(gpa)</c>: the 4 KiB page-table entry / the page-directory entry of gpa.
    /// <c>call(id, ptr)</c> / <c>call_status(id, ptr)</c>: a host call with one pointer, its result / status.
    /// </summary>
    private static GuestImage ConvertGuest()
    {
        var p = new GuestProgram();
        var a = p.Asm;
        Label start = p.Export("_start"), map = p.Export("map"), keeps = p.Export("map_keeps"), poke = p.Export("poke");
        Label peek = p.Export("peek"), pte = p.Export("pte"), pde = p.Export("pde"), call = p.Export("call"), status = p.Export("call_status");
        p.Place(ref start);               // returns (an exit would end the sealed micro-VM's calls)
        a.xor(eax, eax);
        a.ret();

        p.Place(ref map);
        a.mov(rax, Layout.SnpMapGpaRange);
        a.jmp(rax);

        p.Place(ref keeps);
        Label changed = a.CreateLabel(), back = a.CreateLabel();
        AssemblerRegister64[] kept = [rbx, rbp, r12, r13, r14, r15];
        foreach (var r in kept) a.push(r);
        for (int i = 0; i < kept.Length; i++) a.mov(kept[i], 0x5A5A_0000UL + (ulong)i);
        a.mov(rax, Layout.SnpMapGpaRange);
        a.call(rax);
        for (int i = 0; i < kept.Length; i++)
        {
            a.mov(rcx, 0x5A5A_0000UL + (ulong)i);
            a.cmp(kept[i], rcx);
            a.jne(changed);
        }
        a.jmp(back);
        a.Label(ref changed);
        a.mov(eax, 0xBAD);
        a.Label(ref back);
        for (int i = kept.Length - 1; i >= 0; i--) a.pop(kept[i]);
        a.ret();

        p.Place(ref poke);
        a.mov(__qword_ptr[rdi], rsi);
        a.ret();
        p.Place(ref peek);
        a.mov(rax, __qword_ptr[rdi]);
        a.ret();
        p.Place(ref pte);
        a.shr(rdi, 12);
        a.mov(rax, __qword_ptr[rdi * 8 + (int)Layout.Pt]);
        a.ret();
        p.Place(ref pde);
        a.shr(rdi, 21);
        a.mov(rax, __qword_ptr[rdi * 8 + (int)Layout.Pd]);
        a.ret();

        foreach ((Label label, bool wantStatus) in new[] { (call, false), (status, true) })
        {
            Label l = label;
            p.Place(ref l);
            a.mov(r10, rdi);
            a.mov(rdi, rsi);
            a.mov(esi, 8);
            p.HostCall(r10);
            if (wantStatus) a.mov(rax, rdx);
            a.ret();
        }
        return p.Build(start);
    }

    private static ulong Call(MicroVm vm, string name, params ReadOnlySpan<ulong> args) => GuestRun.Value(vm, name, args);

    /// <summary>The C-bit mask of the kernel's SNP guests (CPUID 0x8000001F EBX[5:0]).</summary>
    private static ulong CbitOf(TestKernel k) => 1UL << GuestCpuid.CbitPosition(k.Kvm)!.Value;

    private static ulong Answer(long errno) => unchecked((ulong)-errno);

    [Fact]
    public void The_guest_shares_a_page_the_host_and_a_host_function_read_it_then_it_is_private_again_and_refused()
    {
        using var k = SnpMicroVm.Kernel();
        using var vm = SnpMicroVm.Create(k, ConvertGuest(), Peek());
        ulong cbit = CbitOf(k);
        Assert.True(vm.Run().IsSuccess);
        Assert.Equal(CallRegion.FeaturePrivateMemory | CallRegion.FeatureSnp, vm.Memory.Read<ulong>(CallRegion.Address(CallRegion.Features)));
        Assert.NotNull(vm.Conversion);
        Assert.False(vm.Memory.IsShared(Page, Layout.PageSize));
        Assert.Equal(cbit, Call(vm, "pte", Page) & cbit);

        var shared = vm.Call("map", Page, 1, KvmPara.KVM_MAP_GPA_RANGE_DECRYPTED);
        Assert.True(shared.IsSuccess, shared.ToString());
        Assert.Equal(0UL, shared.Value);
        Assert.Equal(1, shared.Conversions);
        Assert.True(vm.Memory.IsShared(Page, Layout.PageSize));
        Assert.False(vm.Memory.IsShared(Page + Layout.PageSize, Layout.PageSize));
        Assert.Equal(0UL, Call(vm, "pte", Page) & cbit);
        Assert.Equal(cbit, Call(vm, "pte", Page + Layout.PageSize) & cbit);

        // The guest writes through its no-C-bit entry; the host reads it, and writes back.
        Call(vm, "poke", Page, Value);
        Assert.Equal(Value, vm.Memory.Read<ulong>(Page));
        Assert.Equal(Value, Call(vm, "call", PeekId, Page));
        Assert.Equal((ulong)HostCallStatus.Ok, Call(vm, "call_status", PeekId, Page));
        vm.Memory.Write(Page + 8, 0xC0FFEEUL);
        Assert.Equal(0xC0FFEEUL, Call(vm, "peek", Page + 8));

        var back = vm.Call("map_keeps", Page, 1, KvmPara.KVM_MAP_GPA_RANGE_ENCRYPTED | KvmPara.KVM_MAP_GPA_RANGE_PAGE_SZ_4K);
        Assert.Equal(0UL, back.Value);   // 0xBAD: a callee-saved register changed
        Assert.Equal(1, back.Conversions);
        Assert.False(vm.Memory.IsShared(Page, Layout.PageSize));
        Assert.Equal(cbit, Call(vm, "pte", Page) & cbit);
        var fault = Assert.Throws<GuestMemoryFaultException>(() => vm.Memory.Read<ulong>(Page));
        Assert.Equal(GuestMemoryFault.PrivatePage, fault.Fault);
        Assert.Equal((ulong)HostCallStatus.BadPointer, Call(vm, "call_status", PeekId, Page));
        Assert.Equal(Value, Call(vm, "peek", Page));   // in-place conversion: the bytes stay (the emulator models no encryption)
        Assert.Equal(2, vm.Conversion!.Converted);
        Assert.Equal(0, vm.Conversion.Refused);
        Assert.False(vm.IsFaulted);
    }

    public static TheoryData<string, ulong, ulong, ulong, long> BadRanges => new()
    {
        { "unaligned", Page + 1, 1, 0, KvmPara.KVM_EINVAL },
        { "zero pages", Page, 0, 0, KvmPara.KVM_EINVAL },
        { "reserved attribute bit 5", Page, 1, 1UL << 5, KvmPara.KVM_EINVAL },
        { "a page count that wraps", Page, 1UL << 52, 0, KvmPara.KVM_EINVAL },
        { "past the end of memory", 2 * Layout.LargePageSize - Layout.PageSize, 2, 0, KvmPara.KVM_EFAULT },
        { "the GHCB", Layout.Ghcb, 1, 0x10, KvmPara.KVM_EPERM },
        { "the call data", Layout.CallData, 1, 0, KvmPara.KVM_EPERM },
        { "straddling the image base", Layout.ImageBase - Layout.PageSize, 2, 0x10, KvmPara.KVM_EPERM },
        { "part of a 2 MiB page above the 4 KiB page tables", Layout.LargePageSize, 1, 0, KvmPara.KVM_EINVAL },
        { "half a 2 MiB page", Layout.LargePageSize, 256, 0x10, KvmPara.KVM_EINVAL },
        { "straddling 2 MiB", Layout.LargePageSize - Layout.PageSize, 2, 0, KvmPara.KVM_EINVAL },
    };

    [Theory]
    [MemberData(nameof(BadRanges))]
    public void A_bad_range_is_refused_with_the_hypercalls_answer_and_nothing_changes(string what, ulong gpa, ulong pages, ulong attributes, long errno)
    {
        using var k = SnpMicroVm.Kernel();
        using var vm = SnpMicroVm.Create(k, ConvertGuest(), memorySize: 2 * Layout.LargePageSize);
        Assert.True(vm.Run().IsSuccess);
        ulong ghcbPte = Call(vm, "pte", Layout.Ghcb), pagePte = Call(vm, "pte", Page);

        var r = vm.Call("map", gpa, pages, attributes);
        Assert.True(r.IsSuccess, $"{what}: {r}");
        Assert.Equal(Answer(errno), r.Value);
        Assert.Equal(0, r.Conversions);   // refused by the runtime: no request reached the host
        Assert.Equal(0, vm.Conversion!.Refused);
        Assert.True(vm.Memory.IsShared(Layout.Ghcb, Layout.PageSize));
        Assert.True(vm.Memory.IsShared(Layout.CallRegion, Layout.CallDataEnd - Layout.CallRegion));
        Assert.False(vm.Memory.IsShared(Layout.ImageBase, Layout.LargePageSize - Layout.ImageBase));
        Assert.Equal(ghcbPte, Call(vm, "pte", Layout.Ghcb));
        Assert.Equal(pagePte, Call(vm, "pte", Page));
        // The micro-VM goes on: the next conversion works.
        Assert.Equal(0UL, Call(vm, "map", Page, 1, 0));
        Assert.True(vm.Memory.IsShared(Page, Layout.PageSize));
    }

    [Fact]
    public void More_pages_than_one_psc_request_holds_go_in_batches_and_all_are_shared()
    {
        using var k = SnpMicroVm.Kernel();
        using var vm = SnpMicroVm.Create(k, ConvertGuest(), Peek());
        ulong cbit = CbitOf(k);
        Assert.True(vm.Run().IsSuccess);
        const ulong First = Layout.ImageBase + 2 * Layout.PageSize;   // past the guest's code (one page)
        Assert.True(vm.Image.Entry < First);
        ulong pages = (Layout.LargePageSize - First) / Layout.PageSize;
        Assert.True(pages > SnpPageState.MaxEntries);

        var r = vm.Call("map", First, pages, 0);
        Assert.Equal(0UL, r.Value);
        Assert.Equal(2, r.Conversions);   // 253 pages, then the rest: one KVM_HC_MAP_GPA_RANGE exit per request
        Assert.True(vm.Memory.IsShared(First, pages * Layout.PageSize));
        Assert.False(vm.Memory.IsShared(First - Layout.PageSize, Layout.PageSize));
        foreach (ulong gpa in new[] { First, First + SnpPageState.MaxEntries * Layout.PageSize, Layout.LargePageSize - Layout.PageSize })
        {
            Assert.Equal(0UL, Call(vm, "pte", gpa) & cbit);
            Call(vm, "poke", gpa, gpa ^ Value);
            Assert.Equal(gpa ^ Value, vm.Memory.Read<ulong>(gpa));
            Assert.Equal(gpa ^ Value, Call(vm, "call", PeekId, gpa));
        }
        Assert.Equal(0UL, Call(vm, "map", First, pages, 0x10));
        Assert.False(vm.Memory.IsShared(First, pages * Layout.PageSize));
    }

    [Fact]
    public void Above_2_MiB_whole_2_MiB_pages_convert_with_2_MiB_entries_and_their_page_directory_entries()
    {
        using var k = SnpMicroVm.Kernel();
        using var vm = SnpMicroVm.Create(k, ConvertGuest(), Peek(), memorySize: 4 * Layout.LargePageSize);
        ulong cbit = CbitOf(k);
        Assert.True(vm.Run().IsSuccess);
        const ulong Big = 2 * Layout.LargePageSize;
        const ulong Pages = 2 * Layout.LargePageSize / Layout.PageSize;

        var r = vm.Call("map", Big, Pages, 0);
        Assert.Equal(0UL, r.Value);
        Assert.Equal(1, r.Conversions);   // two adjacent 2 MiB entries: one merged KVM_HC_MAP_GPA_RANGE
        Assert.True(vm.Memory.IsShared(Big, 2 * Layout.LargePageSize));
        Assert.False(vm.Memory.IsShared(Layout.LargePageSize, Layout.LargePageSize));
        Assert.Equal(0UL, Call(vm, "pde", Big) & cbit);
        Assert.Equal(0UL, Call(vm, "pde", Big + Layout.LargePageSize) & cbit);
        Assert.Equal(cbit, Call(vm, "pde", Layout.LargePageSize) & cbit);
        ulong gpa = Big + Layout.LargePageSize + 0x12_3008;
        Call(vm, "poke", gpa, Value);
        Assert.Equal(Value, vm.Memory.Read<ulong>(gpa));
        Assert.Equal(Value, Call(vm, "call", PeekId, gpa));

        Assert.Equal(0UL, Call(vm, "map", Big + Layout.LargePageSize, Pages / 2, 0x10));
        Assert.True(vm.Memory.IsShared(Big, Layout.LargePageSize));
        Assert.False(vm.Memory.IsShared(Big + Layout.LargePageSize, Layout.LargePageSize));
        Assert.Equal(cbit, Call(vm, "pde", Big + Layout.LargePageSize) & cbit);
        Assert.Equal((ulong)HostCallStatus.BadPointer, Call(vm, "call_status", PeekId, gpa));
        Assert.Equal(Value, Call(vm, "peek", gpa));
    }

    /// <summary>
    /// The gcc-built SDK guest (CGuest/sdk_guest.c) in an SNP micro-VM: its kvms_make_private / kvms_make_shared see
    /// features bit 1 and call the runtime, so private_roundtrip hides its vault from the host's peek and shares it again.
    /// </summary>
    [SkippableFact]
    public void The_sdk_helpers_convert_through_the_runtime_in_an_snp_micro_vm()
    {
        var built = GccBuild.Guest("sdk_guest.c", "gcc");
        Skip.If(built.Output is null, $"the gcc-built SDK guest is not available: {built.Unavailable}");
        using var k = SnpMicroVm.Kernel();
        var functions = new HostFunctions();
        functions.Add(1, "peek", c => (ulong)c.ReadBytes(c.Args[0], c.Args[1]).Sum(b => (long)b));
        using var vm = SnpMicroVm.Create(k, GuestImage.Load(built.Output!), functions);
        Assert.True(vm.Run().IsSuccess);
        Assert.Equal(CallRegion.FeaturePrivateMemory | CallRegion.FeatureSnp, GuestRun.Value(vm, "features"));

        var r = vm.Call("private_roundtrip");
        Assert.True(r.IsSuccess, r.ToString());
        Assert.Equal(0UL, r.Value);   // 1: the host read the private page; 2: not shared again; 3, 4: the shared read failed
        Assert.Equal(2, r.Conversions);
        Assert.Equal(Answer(KvmPara.KVM_EINVAL), GuestRun.Value(vm, "private_unaligned"));
        Assert.Equal(0UL, vm.Call("private_roundtrip").Value);   // again: the vault is shared, made private, shared
    }
}
