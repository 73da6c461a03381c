// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using KvmSharp.Abi.Arm64;
using KvmSharp.Arm64;
using KvmSharp.Emulation;
using KvmSharp.Emulation.Arm64;
using KvmSharp.Vmm.Arch.Arm64;
using KvmSharp.Vmm.Guests.Arm64;
using KvmSharp.Vmm.Loader;
using KvmSharp.Vmm.Snapshots;
using KvmSharp.Vmm.Tests.CGuest;
using KvmSharp.Vmm.Tests.Infrastructure;

namespace KvmSharp.Vmm.Tests;

/// <summary>
/// SVE micro-VMs (<see cref="MicroVmOptions.Arm64SveVectorBits"/>) on the emulated arm64 kernel with the Neoverse
/// V1-like host (<see cref="Arm64CpuModel.NeoverseV1"/>: SVE up to 256 bits; this x86 machine has no arm64 KVM):
/// CGuest/arm64_sve_guest.c built by aarch64-linux-gnu-gcc -O3 -march=armv8.2-a+sve runs gcc's SVE loops at 128 and
/// 256 bits; without the option the same code is UNDEFINED; Reset zeroes Z, P and FFR; a snapshot carries them; a
/// vector length the kernel does not offer, a kernel without SVE and an x86-64 micro-VM are refused with
/// <see cref="MicroVmSveException"/>; no fd is left behind. Skips, with the reason, without the cross compiler.
/// </summary>
public sealed class Arm64SveMicroVmTests
{
    /// <summary>The lengths the V1-like host implements.</summary>
    public static TheoryData<int> Lengths => new() { 128, 256 };

    private const ulong Mark = 0x5EC2_E7A1_D00D_F00D;

    /// <summary>P3 after "ptrue p3.s, vl3": one predicate bit per byte, the first three 32-bit lanes.</summary>
    private const ulong MarkPredicate = 0x111;

    private static readonly Lazy<GccBuild.Result> Built = new(() =>
    {
        string source = Path.Combine(AppContext.BaseDirectory, "CGuest", "arm64_sve_guest.c");
        string[] args =
        [
            .. GuestSdk.Arm64CompilerArguments.Where(a => a != "-mgeneral-regs-only").Select(a => a == "-O2" ? "-O3" : a),
            "-march=armv8.2-a+sve", "-Wall", "-Wextra", "-Werror", "-o", "out", source,
        ];
        return GccBuild.InTempDirectory(dir => GccBuild.Compile(dir, args, GuestSdk.Arm64Compiler));
    });

    private static GuestImage Image()
    {
        var built = Built.Value;
        Skip.If(built.Output is null, $"{GuestSdk.Arm64Compiler} (package gcc-aarch64-linux-gnu) is not available: {built.Unavailable}");
        return GuestImage.Load(built.Output!);
    }

    /// <summary>Runs <paramref name="body"/> on a fresh emulated arm64 kernel of <paramref name="cpu"/>; fails on a leaked fd.</summary>
    private static void On(Arm64CpuModel cpu, Action<EmulatedKernel, Kvm> body)
    {
        using var kernel = new EmulatedKernel(EmulatorConfig.Arm64() with { Arm64Cpu = cpu });
        using (var kvm = Kvm.Open(kernel, proposals: kernel.Config.Proposals))
        {
            body(kernel, kvm);
        }
        Assert.Equal(0, kernel.OpenFdCount);
    }

    private static void OnSveHost(Action<Kvm> body) => On(Arm64CpuModel.NeoverseV1, (_, kvm) => body(kvm));

    private static MicroVmOptions Options(Kvm kvm, int? bits) => Arm64Kernel.Options(kvm) with { Arm64SveVectorBits = bits };

    private static ulong Value(MicroVm vm, string name, params ulong[] args)
    {
        var r = vm.Call(name, args);
        Assert.True(r.IsSuccess, $"{name}: {r}");
        return r.Value!.Value;
    }

    /// <summary>203 signed words (a length no vector length divides), negative ones among them.</summary>
    private static byte[] Words(out long sum)
    {
        var bytes = new byte[203 * 4];
        sum = 0;
        uint x = 0x9E37_79B9;
        for (int i = 0; i < 203; i++)
        {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            int w = (int)x;
            BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(i * 4), w);
            sum += w;
        }
        return bytes;
    }

    private static byte[] Register(MicroVm vm, ulong id) => vm.Vcpu.GetOneRegBytes(id);

    /// <summary>Z0–Z31, P0–P15 and FFR (slice 0) as KVM_GET_ONE_REG reads them, one string.</summary>
    private static string SveRegisters(MicroVm vm)
    {
        var ids = new List<ulong>();
        for (int n = 0; n < KvmArm64Sve.KVM_ARM64_SVE_NUM_ZREGS; n++) ids.Add(KvmArm64Sve.KVM_REG_ARM64_SVE_ZREG(n, 0));
        for (int n = 0; n < KvmArm64Sve.KVM_ARM64_SVE_NUM_PREGS; n++) ids.Add(KvmArm64Sve.KVM_REG_ARM64_SVE_PREG(n, 0));
        ids.Add(KvmArm64Sve.KVM_REG_ARM64_SVE_FFR(0));
        return string.Join(" ", ids.Select(id => $"{id:X}={Convert.ToHexString(Register(vm, id))}"));
    }

    [SkippableTheory]
    [MemberData(nameof(Lengths))]
    public void Compiled_sve_loops_run_at_the_asked_vector_length_and_return_the_right_results(int bits) => OnSveHost(kvm =>
    {
        var image = Image();
        using var vm = MicroVm.Create(image, Options(kvm, bits));
        // CNTB: ZCR_EL1.LEN as the boot set it (on a host whose longest length is 256 bits, 128 is asked for too).
        Assert.Equal((ulong)bits / 8, Value(vm, "sve_vl"));
        Assert.Equal((ulong)(bits / 128 - 1), vm.Vcpu.GetOneReg(KvmArm64Sve.ZCR_EL1));
        Assert.Equal(0x3UL, (vm.Vcpu.GetOneReg(KvmArm64SysRegs.CPACR_EL1) >> 16) & 3); // ZEN
        byte[] words = Words(out long sum);
        var r = vm.Call("sum32", words);
        Assert.True(r.IsSuccess, r.ToString());
        Assert.Equal(sum, (long)r.Value!.Value);
        byte[] bytes = [.. Enumerable.Range(0, 1000).Select(i => (byte)(i * 7 % 13))];
        Assert.Equal((ulong)bytes.Count(b => b == 5), CountByte(vm, bytes, 5));
        var run = vm.Run();
        Assert.Equal(GuestOutcome.Exit, run.Outcome);
        Assert.Equal(bits / 8, run.Status);
    });

    /// <summary>count_byte(input, length, b): the input through the call data area, b after it.</summary>
    private static ulong CountByte(MicroVm vm, byte[] input, byte b)
    {
        vm.Memory.Write(Arch.X86_64.Layout.CallData, input);
        return Value(vm, "count_byte", Arch.X86_64.Layout.CallData, (ulong)input.Length, b);
    }

    [SkippableFact]
    public void Without_the_option_the_same_sve_code_is_an_undefined_instruction() => OnSveHost(kvm =>
    {
        var image = Image();
        using var vm = MicroVm.Create(image, Options(kvm, null));
        // The vCPU has no SVE (no KVM_ARM_VCPU_SVE): no SVE registers, and SVE encodings are unallocated.
        Assert.ThrowsAny<KvmSharp.Kernel.KvmException>(() => vm.Vcpu.GetSveVectorLengths());
        var r = vm.Call("sve_vl");
        Assert.Equal(GuestOutcome.Exception, r.Outcome);
        Assert.Equal(0u, Arm64Exceptions.ExceptionClass(r.Exception!.ErrorCode!.Value)); // EC 0: unknown reason (UNDEFINED)
        uint insn = vm.Memory.Read<uint>(r.Exception.Rip);
        Assert.Equal(0b0010u, (insn >> 25) & 0xF); // an SVE encoding (Arm ARM C4.1: op0 bits 28:25 = 0b0010)
        Assert.True(vm.IsFaulted);
        // After a Reset, the vectorised loop: gcc's SVE tail is UNDEFINED as well.
        vm.Reset();
        r = vm.Call("sum32", Words(out _));
        Assert.Equal(GuestOutcome.Exception, r.Outcome);
        Assert.Equal(0u, Arm64Exceptions.ExceptionClass(r.Exception!.ErrorCode!.Value));
        Assert.Equal(0b0010u, (vm.Memory.Read<uint>(r.Exception.Rip) >> 25) & 0xF);
    });

    [SkippableTheory]
    [MemberData(nameof(Lengths))]
    public void Reset_zeroes_z_p_and_ffr_and_keeps_the_vector_length(int bits) => OnSveHost(kvm =>
    {
        var image = Image();
        string fresh;
        using (var never = MicroVm.Create(image, Options(kvm, bits))) fresh = SveRegisters(never);
        using var vm = MicroVm.Create(image, Options(kvm, bits));
        Assert.Equal(fresh, SveRegisters(vm));
        Value(vm, "z_put", Mark);
        // Control: the marks are there, in the guest's view and the kernel's (Z7's top doubleword is above bit 128 at 256).
        Assert.Equal(Mark, Value(vm, "z_top"));
        Assert.Equal(MarkPredicate, Value(vm, "p_get"));
        byte[] z7 = Register(vm, KvmArm64Sve.KVM_REG_ARM64_SVE_ZREG(7, 0));
        Assert.Equal(Mark, BinaryPrimitives.ReadUInt64LittleEndian(z7.AsSpan(bits / 8 - 8)));
        Assert.All(z7[(bits / 8)..], b => Assert.Equal(0, b)); // beyond the vector length: zero padding
        Assert.NotEqual(fresh, SveRegisters(vm));

        vm.Reset();
        Assert.Equal(fresh, SveRegisters(vm));
        Assert.Equal((ulong)bits / 8, Value(vm, "sve_vl"));
        Assert.Equal(0UL, Value(vm, "z_top"));
        Assert.Equal(0UL, Value(vm, "p_get"));
    });

    [SkippableTheory]
    [MemberData(nameof(Lengths))]
    public void A_snapshot_carries_z_and_p_registers_into_a_restore_a_new_micro_vm_and_a_file(int bits) => OnSveHost(kvm =>
    {
        var image = Image();
        using var vm = MicroVm.Create(image, Options(kvm, bits));
        Value(vm, "z_put", Mark);
        var snapshot = vm.Snapshot();
        // The state API: Z7 (slice 0, 256 bytes) holds the mark in every doubleword of the vector length, and the
        // snapshot lists the vector lengths and ZCR_EL1.
        byte[] z7 = snapshot.GetArm64Register(KvmArm64Sve.KVM_REG_ARM64_SVE_ZREG(7, 0))!;
        Assert.Equal(256, z7.Length);
        for (int i = 0; i < bits / 64; i++) Assert.Equal(Mark, BinaryPrimitives.ReadUInt64LittleEndian(z7.AsSpan(i * 8)));
        Assert.Equal(MarkPredicate, BinaryPrimitives.ReadUInt64LittleEndian(snapshot.GetArm64Register(KvmArm64Sve.KVM_REG_ARM64_SVE_PREG(3, 0))));
        Assert.NotNull(snapshot.GetArm64Register(KvmArm64Sve.KVM_REG_ARM64_SVE_VLS));
        Assert.Equal((ulong)(bits / 128 - 1), BinaryPrimitives.ReadUInt64LittleEndian(snapshot.GetArm64Register(KvmArm64Sve.ZCR_EL1)));

        // Overwritten, then restored.
        Value(vm, "z_put", ~Mark);
        Assert.Equal(~Mark, Value(vm, "z_top"));
        vm.Restore(snapshot);
        Assert.Equal(Mark, Value(vm, "z_top"));
        Assert.Equal(MarkPredicate, Value(vm, "p_get"));

        // A new micro-VM from it, and one from its file.
        using (var copy = MicroVm.Create(snapshot, Options(kvm, bits)))
        {
            Assert.Equal(Mark, Value(copy, "z_top"));
            Assert.Equal((ulong)bits / 8, Value(copy, "sve_vl"));
        }
        using var stream = new MemoryStream();
        snapshot.WriteTo(stream);
        stream.Position = 0;
        var read = MicroVmSnapshot.ReadFrom(stream);
        Assert.Equal(z7, read.GetArm64Register(KvmArm64Sve.KVM_REG_ARM64_SVE_ZREG(7, 0)));
        using var fromFile = MicroVm.Create(read, Options(kvm, bits));
        Assert.Equal(Mark, Value(fromFile, "z_top"));
        Assert.Equal(MarkPredicate, Value(fromFile, "p_get"));
    });

    [SkippableFact]
    public void A_snapshot_loads_only_into_a_micro_vm_with_the_same_vector_lengths() => OnSveHost(kvm =>
    {
        var image = Image();
        MicroVmSnapshot at256, plain;
        using (var vm = MicroVm.Create(image, Options(kvm, 256))) at256 = vm.Snapshot();
        using (var vm = MicroVm.Create(image, Options(kvm, null))) plain = vm.Snapshot();
        foreach (var (snapshot, bits, expected) in new (MicroVmSnapshot, int?, string)[]
        {
            (at256, 128, "SVE vector lengths 128, 256 bits, this micro-VM's has SVE vector lengths 128 bits"),
            (at256, null, "SVE vector lengths 128, 256 bits, this micro-VM's has no SVE"),
            (plain, 256, "no SVE, this micro-VM's has SVE vector lengths 128, 256 bits"),
        })
        {
            var e = Assert.Throws<MicroVmSnapshotException>(() => MicroVm.Create(snapshot, Options(kvm, bits)));
            Assert.Equal(SnapshotRefusal.VcpuStateRefused, e.Reason);
            Assert.Contains(expected, e.Message, StringComparison.Ordinal);
        }
        // The same lengths load.
        using var same = MicroVm.Create(at256, Options(kvm, 256));
        Assert.Equal(32UL, Value(same, "sve_vl"));
        // Restore into a used micro-VM of another length is refused the same way, before anything changed: the
        // micro-VM is not faulted and runs on without a Reset.
        using var other = MicroVm.Create(image, Options(kvm, 128));
        var r = Assert.Throws<MicroVmSnapshotException>(() => other.Restore(at256));
        Assert.Equal(SnapshotRefusal.VcpuStateRefused, r.Reason);
        Assert.Equal(16UL, Value(other, "sve_vl"));
    });

    [SkippableFact]
    public void A_traced_call_steps_through_sve_instructions() => OnSveHost(kvm =>
    {
        var image = Image();
        using var vm = MicroVm.Create(image, Options(kvm, 256) with { TraceInstructions = 200 });
        var r = vm.Call("sve_vl");
        Assert.Equal(32UL, r.Value);
        // CNTB X0 (Arm ARM C8.2 CNTB: 0x0420E3E0 | Rd) among the stepped instructions, at sve_vl's address.
        ulong entry = image.Exports["sve_vl"];
        Assert.Contains(r.Trace!.Instructions, i => i.Rip == entry && BinaryPrimitives.ReadUInt32LittleEndian(i.Bytes.Span) == 0x0420_E3E0);
    });

    [SkippableFact]
    public void A_pooled_sve_micro_vms_next_user_sees_none_of_the_last_users_z_and_p_registers() => OnSveHost(kvm =>
    {
        var image = Image();
        using var pool = new MicroVmPool(image, Options(kvm, 256), 1);
        var first = pool.Rent();
        Value(first, "z_put", Mark);
        Assert.Equal(Mark, Value(first, "z_top"));
        pool.Return(first);
        var second = pool.Rent();
        Assert.Same(first, second); // the one micro-VM, reset between its users
        Assert.Equal(0UL, Value(second, "z_top"));
        Assert.Equal(0UL, Value(second, "p_get"));
        Assert.Equal(32UL, Value(second, "sve_vl"));
        pool.Return(second);
    });

    [Fact]
    public void A_vector_length_the_kernel_does_not_offer_is_refused_naming_it() => On(Arm64CpuModel.NeoverseV1, (kernel, kvm) =>
    {
        int before = kernel.OpenFdCount;
        foreach (int bits in new[] { 384, 512, 2048 })
        {
            var e = Assert.Throws<MicroVmSveException>(() => MicroVm.Create(Arm64Sum.Image(), Options(kvm, bits)));
            Assert.Equal(bits, e.RequestedBits);
            Assert.Equal([128, 256], e.OfferedBits);
            Assert.Contains($"not {bits}", e.Message, StringComparison.Ordinal);
            Assert.Equal(before, kernel.OpenFdCount); // the half-made VM and vCPU are closed
        }
        foreach (int bits in new[] { 0, 100, 2176, -128 })
        {
            var e = Assert.Throws<MicroVmSveException>(() => MicroVm.Create(Arm64Sum.Image(), Options(kvm, bits)));
            Assert.Equal(bits, e.RequestedBits);
            Assert.Empty(e.OfferedBits);
            Assert.Contains("is not an SVE vector length", e.Message, StringComparison.Ordinal);
        }
        Assert.Equal(before, kernel.OpenFdCount);
    });

    [Fact]
    public void Sve_on_a_kernel_without_it_is_refused() => On(Arm64CpuModel.NeoverseN1, (kernel, kvm) =>
    {
        int before = kernel.OpenFdCount;
        var e = Assert.Throws<MicroVmSveException>(() => MicroVm.Create(Arm64Sum.Image(), Options(kvm, 128)));
        Assert.Equal(128, e.RequestedBits);
        Assert.Empty(e.OfferedBits);
        Assert.Contains("KVM_CAP_ARM_SVE", e.Message, StringComparison.Ordinal);
        Assert.Equal(before, kernel.OpenFdCount);
    });

    [Fact]
    public void Sve_on_an_x86_64_micro_vm_is_refused()
    {
        using var kernel = new EmulatedKernel(EmulatorConfig.LikeThisHost(true));
        using (var kvm = Kvm.Open(kernel, proposals: kernel.Config.Proposals))
        {
            var e = Assert.Throws<MicroVmSveException>(() =>
                MicroVm.Create(Guests.Hello.Image(), new MicroVmOptions { Kvm = kvm, Memory = null, Arm64SveVectorBits = 256 }));
            Assert.Equal(256, e.RequestedBits);
            Assert.Contains("X86_64", e.Message, StringComparison.Ordinal);
        }
        Assert.Equal(0, kernel.OpenFdCount);
    }

    [SkippableFact]
    public void Sve_micro_vms_leave_no_fd_behind() => On(Arm64CpuModel.NeoverseV1, (kernel, kvm) =>
    {
        var image = Image();
        int before = kernel.OpenFdCount;
        for (int i = 0; i < 3; i++)
        {
            using var vm = MicroVm.Create(image, Options(kvm, 256));
            Value(vm, "z_put", Mark);
            var snapshot = vm.Snapshot();
            vm.Reset();
            vm.Restore(snapshot);
            using var copy = MicroVm.Create(snapshot, Options(kvm, 256));
            Assert.Equal(Mark, Value(copy, "z_top"));
        }
        Assert.Equal(before, kernel.OpenFdCount);
    });
}
