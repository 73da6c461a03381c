// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using KvmSharp.Emulation;
using KvmSharp.Emulation.Arm64;
using KvmSharp.Vmm.Arch.Arm64;
using KvmSharp.Vmm.Loader;
using KvmSharp.Vmm.Snapshots;
using KvmSharp.Vmm.Tests.CGuest;

namespace KvmSharp.Vmm.Tests;

/// <summary>
/// An arm64 C guest built with -mbranch-protection=bti (its ELF's GNU_PROPERTY_AARCH64_FEATURE_1_AND says BTI) runs on
/// guarded pages when the vCPU has FEAT_BTI (the emulated Neoverse V2): its functions, each opening with BTI c, are
/// called as before, and an indirect branch to anything else — the shape of a jump-oriented exploit — ends the call
/// with a branch target exception. Without FEAT_BTI (N1), or for an image built without BTI, nothing is guarded, as
/// Linux maps an executable PROT_BTI only when both hold. Also the PT_GNU_PROPERTY rules the kernel applies.
/// </summary>
public sealed class Arm64BranchProtectionTests
{
    private const string Source = """
        #include "kvmsharp_guest.h"

        void _start(void) {}

        long add(long a, long b) { return a + b; }

        /* Where an overwritten return address leads: the "attacker's" code, which ends the micro-VM with 0x1337. */
        __attribute__((noinline)) void win(void) { kvms_exit(0x1337); }

        __attribute__((noinline)) long leaf(long a) { __asm__ volatile("" : "+r"(a)); return a + 1; }

        /* A stack overwrite of this function's saved return address (its frame record's second word) with &win. */
        __attribute__((noinline)) long smash(long a)
        {
            long *frame = __builtin_frame_address(0);
            long r = leaf(a);
            frame[1] = (long)&win;
            __asm__ volatile("" : : : "memory");
            return r;
        }

        /* An indirect branch (BR X1) to a plain instruction: BTYPE 11 on a guarded page needs BTI j or jc there. */
        long jump(long a)
        {
            long r;
            __asm__ volatile("adr x1, 1f\n\tbr x1\n1:\tmov %0, %1" : "=r"(r) : "r"(a) : "x1");
            return r;
        }
        """;

    private static readonly Dictionary<string, Lazy<GccBuild.Result>> Built = new(StringComparer.Ordinal)
    {
        ["bti"] = new(() => Build("-mbranch-protection=bti")),
        ["none"] = new(() => Build("-mbranch-protection=none")),
        ["pac-ret"] = new(() => Build("-mbranch-protection=pac-ret")),
        ["standard"] = new(() => Build("-mbranch-protection=standard")),
    };

    private static GccBuild.Result Build(string protection) => GccBuild.InTempDirectory(dir =>
    {
        File.WriteAllText(Path.Combine(dir, "guest.c"), Source);
        GccBuild.Compile(dir, [.. GuestSdk.Arm64CompilerArguments, protection, "-Wall", "-Wextra", "-Werror", "-o", "out", "guest.c"],
            GuestSdk.Arm64Compiler);
    });

    private static GuestImage Image(string build)
    {
        var built = Built[build].Value;
        Skip.If(built.Output is null, $"{GuestSdk.Arm64Compiler} (package gcc-aarch64-linux-gnu) is not available: {built.Unavailable}");
        return GuestImage.Load(built.Output!);
    }

    private static void On(Arm64CpuModel cpu, Action<Kvm> body)
    {
        using var kernel = new EmulatedKernel(EmulatorConfig.Arm64() with { Arm64Cpu = cpu });
        using (var kvm = Kvm.Open(kernel, proposals: kernel.Config.Proposals)) body(kvm);
        Assert.Equal(0, kernel.OpenFdCount);
    }

    private static MicroVm Create(Kvm kvm, GuestImage image) =>
        MicroVm.Create(image, new MicroVmOptions { Kvm = kvm, Timeout = TimeSpan.FromSeconds(60) });

    [SkippableFact]
    public void The_elf_property_says_what_each_build_asked_for()
    {
        Assert.Equal(BranchProtection.Bti, Image("bti").BranchProtection);
        Assert.Equal(BranchProtection.None, Image("none").BranchProtection);
        Assert.Equal(BranchProtection.Pac, Image("pac-ret").BranchProtection);
        Assert.Equal(BranchProtection.Bti | BranchProtection.Pac, Image("standard").BranchProtection);
    }

    /// <summary>
    /// Return-address signing: on a CPU with pointer authentication (N1+PAuth, V1, V2) a pac-ret or standard image's
    /// micro-VM signs return addresses, so smash()'s overwritten one fails AUTIASP and the RET faults (an instruction
    /// abort at the poisoned address: these presets have no FEAT_FPAC) instead of reaching win(); without pointer
    /// authentication (N1) or without pac-ret the overwrite works and win() ends the micro-VM with 0x1337 — what the
    /// signing is there to stop.
    /// </summary>
    [SkippableFact]
    public void A_signed_return_address_overwritten_on_the_stack_faults_instead_of_returning_where_it_points()
    {
        foreach (var (cpu, build, signed) in new[]
                 {
                     (Arm64CpuModel.WithPointerAuth, "pac-ret", true), (Arm64CpuModel.NeoverseV1, "pac-ret", true),
                     (Arm64CpuModel.NeoverseV2, "standard", true), (Arm64CpuModel.NeoverseN1, "pac-ret", false),
                     (Arm64CpuModel.NeoverseV2, "none", false), (Arm64CpuModel.NeoverseV2, "bti", false),
                 })
        {
            On(cpu, kvm =>
            {
                using var vm = Create(kvm, Image(build));
                string what = $"{cpu.Name}, {build}";
                Assert.True(signed == vm.ReturnAddressesSigned, what);
                Assert.Equal(4UL, vm.Call("leaf", 3).Value);
                var r = vm.Call("smash", 1);
                if (!signed)
                {
                    Assert.True(r.Outcome == GuestOutcome.Exit && r.Status == 0x1337, $"{what}: {r}");
                    return;
                }
                Assert.True(r.Outcome == GuestOutcome.Exception, $"{what}: {r}");
                Assert.Equal(0x21u, Arm64Exceptions.ExceptionClass(r.Exception!.ErrorCode!.Value));
                // The PC it faulted at is win's address with AUTIA's error code in its top bits, not win itself.
                ulong win = vm.Image.Exports["win"];
                Assert.NotEqual(win, r.Exception.Rip);
                Assert.Equal(win & 0xFFFF_FFFFUL, r.Exception.Rip & 0xFFFF_FFFFUL);
                vm.Reset();
                Assert.True(vm.ReturnAddressesSigned);
                Assert.Equal(GuestOutcome.Exception, vm.Call("smash", 1).Outcome);
            });
        }
    }

    [SkippableFact]
    public void A_bti_guest_on_a_cpu_with_feat_bti_runs_guarded_and_an_indirect_jump_off_a_landing_pad_is_a_branch_target_exception() =>
        On(Arm64CpuModel.NeoverseV2, kvm =>
        {
            using var vm = Create(kvm, Image("bti"));
            Assert.True(vm.BranchTargetsGuarded);
            var add = vm.Call("add", 2, 3);
            Assert.True(add.IsSuccess, add.ToString());
            Assert.Equal(5UL, add.Value);

            var r = vm.Call("jump", 7);
            Assert.Equal(GuestOutcome.Exception, r.Outcome);
            // ESR_EL1: EC 0x0D, ISS = the BTYPE (11: BR through a register other than X16/X17 from a guarded page).
            Assert.Equal(0x0Du, Arm64Exceptions.ExceptionClass(r.Exception!.ErrorCode!.Value));
            Assert.Equal(3UL, r.Exception.ErrorCode.Value & 3);
            ulong jump = vm.Image.Exports["jump"];
            Assert.InRange(r.Exception.Rip, jump, jump + 16); // the MOV after the BR
            Assert.Contains("branch target exception", r.Detail, StringComparison.Ordinal);

            // A reset writes the tables again, guarded again.
            vm.Reset();
            Assert.Equal(9UL, vm.Call("add", 4, 5).Value);
            Assert.Equal(GuestOutcome.Exception, vm.Call("jump", 7).Outcome);
        });

    [SkippableFact]
    public void Without_feat_bti_or_without_the_property_nothing_is_guarded_and_the_jump_runs()
    {
        foreach (var (cpu, build) in new[] { (Arm64CpuModel.NeoverseN1, "bti"), (Arm64CpuModel.NeoverseV1, "bti"), (Arm64CpuModel.NeoverseV2, "none") })
        {
            On(cpu, kvm =>
            {
                using var vm = Create(kvm, Image(build));
                Assert.False(vm.BranchTargetsGuarded, $"{cpu.Name}, {build}");
                var r = vm.Call("jump", 7);
                Assert.True(r.IsSuccess, $"{cpu.Name}, {build}: {r}");
                Assert.Equal(7UL, r.Value);
            });
        }
    }

    /// <summary>
    /// A snapshot keeps the image's branch protection (ImageEncoding's optional trailing field), so a micro-VM made from
    /// it, and its resets, stay guarded; an image without it encodes as before.
    /// </summary>
    [SkippableFact]
    public void A_snapshot_of_a_guarded_micro_vm_restores_guarded() => On(Arm64CpuModel.NeoverseV2, kvm =>
    {
        using var vm = Create(kvm, Image("bti"));
        Assert.Equal(5UL, vm.Call("add", 2, 3).Value);
        using var stream = new MemoryStream();
        vm.Snapshot().WriteTo(stream);
        stream.Position = 0;
        var snapshot = MicroVmSnapshot.ReadFrom(stream);
        Assert.Equal(BranchProtection.Bti, snapshot.Image.BranchProtection);
        using var restored = MicroVm.Create(snapshot, new MicroVmOptions { Kvm = kvm, Timeout = TimeSpan.FromSeconds(60) });
        Assert.True(restored.BranchTargetsGuarded);
        Assert.Equal(GuestOutcome.Exception, restored.Call("jump", 1).Outcome);
        restored.Reset();
        Assert.Equal(GuestOutcome.Exception, restored.Call("jump", 1).Outcome);
    });

    /// <summary>A PT_GNU_PROPERTY segment of <paramref name="properties"/> (type, data) under one "GNU" note.</summary>
    private static byte[] Note(uint type = ElfProperties.NT_GNU_PROPERTY_TYPE_0, string name = "GNU\0", int? descSize = null,
        params (uint Type, byte[] Data)[] properties)
    {
        var desc = new List<byte>();
        foreach (var (t, data) in properties)
        {
            desc.AddRange(BitConverter.GetBytes(t));
            desc.AddRange(BitConverter.GetBytes((uint)data.Length));
            desc.AddRange(data);
            while (desc.Count % 8 != 0) desc.Add(0);
        }
        var note = new byte[12 + 4 + desc.Count];
        BinaryPrimitives.WriteUInt32LittleEndian(note, (uint)name.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(note.AsSpan(4), (uint)(descSize ?? desc.Count));
        BinaryPrimitives.WriteUInt32LittleEndian(note.AsSpan(8), type);
        System.Text.Encoding.ASCII.GetBytes(name).AsSpan(0, Math.Min(4, name.Length)).CopyTo(note.AsSpan(12));
        desc.ToArray().CopyTo(note.AsSpan(16));
        return note;
    }

    private static (uint, byte[]) Feature1(uint bits) => (ElfProperties.GNU_PROPERTY_AARCH64_FEATURE_1_AND, BitConverter.GetBytes(bits));

    [Fact]
    public void The_feature_1_and_property_is_read_as_the_kernel_reads_it()
    {
        Assert.Equal(BranchProtection.Bti, ElfProperties.ReadAarch64Features(Note(properties: Feature1(1))));
        Assert.Equal(BranchProtection.Bti | BranchProtection.Pac, ElfProperties.ReadAarch64Features(Note(properties: Feature1(3))));
        // Unknown bits (GCS, 4) are ignored; other property types are skipped; no properties is none.
        Assert.Equal(BranchProtection.None, ElfProperties.ReadAarch64Features(Note(properties: [(0xC000_0001u, new byte[4]), (0xC000_0002u, new byte[8])])));
        Assert.Equal(BranchProtection.Pac, ElfProperties.ReadAarch64Features(Note(properties: [(0x1u, new byte[4]), Feature1(6)])));
        Assert.Equal(BranchProtection.None, ElfProperties.ReadAarch64Features(Note()));
    }

    public static TheoryData<string, byte[]> MalformedNotes => new()
    {
        { "wrong note type", Note(type: 1, properties: Feature1(1)) },
        { "wrong name", Note(name: "GNV\0", properties: Feature1(1)) },
        { "name size 3", Note(name: "GNU", properties: Feature1(1)) },
        { "descsz past the segment", Note(descSize: 64, properties: Feature1(1)) },
        { "feature 1 with 8 data bytes", Note(properties: (ElfProperties.GNU_PROPERTY_AARCH64_FEATURE_1_AND, new byte[8])) },
        { "unsorted", Note(properties: [Feature1(1), (0x1u, new byte[4])]) },
        { "duplicate", Note(properties: [Feature1(1), Feature1(1)]) },
        { "cut header", Note(descSize: 4, properties: Feature1(1)) },
        { "too short", new byte[8] },
        { "over 1 KiB", Note(properties: (0x1u, new byte[1100])) },
    };

    [Theory]
    [MemberData(nameof(MalformedNotes))]
    public void A_note_the_kernel_refuses_is_a_bad_property(string why, byte[] note)
    {
        var e = Assert.Throws<GuestImageException>(() => ElfProperties.ReadAarch64Features(note));
        Assert.True(e.Error == GuestImageError.BadProperty, why);
        Assert.Contains("parse_elf_properties", e.Message, StringComparison.Ordinal);
    }
}
