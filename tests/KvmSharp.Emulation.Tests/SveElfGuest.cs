// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using KvmSharp.Abi;
using KvmSharp.Abi.Arm64;
using KvmSharp.Emulation.Arm64;
using KvmSharp.Arm64;
using static KvmSharp.Abi.Arm64.KvmArm64Sve;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// The raw guest the compiled SVE/SVE2 comparisons run on the emulator (Arm64SveCorpusTests, Arm64Sve2Tests): a
/// static aarch64 ELF linked at <see cref="TextBase"/>, its PT_LOAD segments copied to their addresses (MMU off:
/// addresses are IPAs), SP = <see cref="StackTop"/>, LR = a stub that stores X0 to the unbacked <see cref="ExitMmio"/>
/// (KVM_EXIT_MMIO), and the same stub at the current-EL vector (+0x200) storing to ExitMmio + 8 so an exception
/// exits instead of looping.
/// </summary>
internal static class SveElfGuest
{
    /// <summary>Where the guest is linked (-Ttext), the memory it gets, its stack, the return stub and the exit address.</summary>
    public const ulong TextBase = 0x10_0000, MemorySize = 0x20_0000, StackTop = 0x1F_0000, ReturnStub = 0x1000, ExitMmio = 0x100_0000;

    /// <summary>
    /// Runs <paramref name="elf"/>'s entry on an SVE vCPU of <paramref name="model"/> with CPACR_EL1.FPEN = ZEN = 0b11,
    /// ZCR_EL1.LEN = <paramref name="zcrLen"/> and, when given, the KVM_REG_ARM64_SVE_VLS maximum
    /// <paramref name="maxVq"/>; asserts it returned through the stub, then hands X0 and guest memory to
    /// <paramref name="result"/>.
    /// </summary>
    public static T Run<T>(byte[] elf, Arm64CpuModel model, ulong zcrLen, Func<ulong, AnonymousMemory, T> result, int? maxVq = null)
    {
        using var kernel = new EmulatedKernel(EmulatorConfig.Arm64() with { Arm64Cpu = model });
        using var kvm = Kvm.Open(kernel);
        using var vm = kvm.CreateVm();
        using var host = vm.AllocateMemory(MemorySize);
        int phoff = (int)BinaryPrimitives.ReadUInt64LittleEndian(elf.AsSpan(0x20));
        int phentsize = BinaryPrimitives.ReadUInt16LittleEndian(elf.AsSpan(0x36)), phnum = BinaryPrimitives.ReadUInt16LittleEndian(elf.AsSpan(0x38));
        for (int i = 0; i < phnum; i++)
        {
            var ph = elf.AsSpan(phoff + i * phentsize);
            if (BinaryPrimitives.ReadUInt32LittleEndian(ph) != 1) continue; // PT_LOAD
            ulong offset = BinaryPrimitives.ReadUInt64LittleEndian(ph[8..]), vaddr = BinaryPrimitives.ReadUInt64LittleEndian(ph[16..]);
            int filesz = (int)BinaryPrimitives.ReadUInt64LittleEndian(ph[32..]);
            host.Write(vaddr, elf.AsSpan((int)offset, filesz).ToArray());
        }
        byte[] stub = new byte[8];
        BinaryPrimitives.WriteUInt32LittleEndian(stub, 0xD2A02001);          // mov x1, #0x1000000
        BinaryPrimitives.WriteUInt32LittleEndian(stub.AsSpan(4), 0xF9000020); // str x0, [x1]
        host.Write(ReturnStub, stub);
        // Any exception (VBAR_EL1 = 0, current EL with SP_ELx: +0x200) exits too, at ExitMmio + 8.
        BinaryPrimitives.WriteUInt32LittleEndian(stub.AsSpan(4), 0xF9000420); // str x0, [x1, #8]
        host.Write(0x200, stub);
        using var slot = vm.AddMemorySlot(0, 0, host);
        using var vcpu = vm.CreateVcpu(0);
        var init = vm.PreferredTarget();
        init.features[0] |= (1u << KvmArm64Constants.KVM_ARM_VCPU_PSCI_0_2) | (1u << KvmArm64Constants.KVM_ARM_VCPU_SVE);
        vcpu.Init(init);
        if (maxVq is int vq)
        {
            var words = new ulong[KVM_ARM64_SVE_VLS_WORDS];
            for (int q = 1; q <= vq; q *= 2) words[0] |= 1UL << (q - 1);
            vcpu.SetSveVectorLengths(words);
        }
        vcpu.FinalizeSve();
        vcpu.SetOneReg(KvmArm64SysRegs.CPACR_EL1, 0x33_0000);
        vcpu.SetOneReg(ZCR_EL1, zcrLen);
        vcpu.SetOneReg(KvmArm64Regs.SpEl1, StackTop); // KVM resets PSTATE to EL1h: SP is SP_EL1
        vcpu.SetOneReg(KvmArm64Regs.X(30), ReturnStub);
        vcpu.SetPc(BinaryPrimitives.ReadUInt64LittleEndian(elf.AsSpan(0x18)));
        var exit = vcpu.RunBounded();
        Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_MMIO && exit.MmioAddress == ExitMmio,
            $"exit {exit.Reason} at 0x{exit.MmioAddress:X}, PC 0x{vcpu.GetOneReg(KvmArm64Regs.Pc):X}, ESR_EL1 0x{vcpu.GetOneReg(KvmArm64SysRegs.ESR_EL1):X}");
        return result(vcpu.GetOneReg(KvmArm64Regs.X(0)), host);
    }
}
