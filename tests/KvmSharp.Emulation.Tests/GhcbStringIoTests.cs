// SPDX-License-Identifier: MIT
using Iced.Intel;
using KvmSharp.Abi;
using KvmSharp.Kernel;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// String port I/O of an SEV-ES/SNP guest through the GHCB (emulator only: this host has no SEV): SVM_EXIT_IOIO with
/// the STR bit, the data in the scratch area (sw_scratch), the count in sw_exit_info_2 — arch/x86/kvm/svm/sev.c
/// sev_es_string_io, setup_vmgexit_scratch; x86.c kvm_sev_es_string_io, complete_sev_es_emulated_ins/outs
/// (src/KvmSharp.Emulation/X86/Emulate/X86Emulator.GhcbStringIo.cs).
/// </summary>
public sealed class GhcbStringIoTests
{
    private const ulong GhcbLinear = SevEsGuest.SharedAlias + SevEsGuest.Ghcb;
    private const ulong ReportLinear = SevEsGuest.SharedAlias + SevEsGuest.Report;
    private const ulong SharedBuffer = SevEsGuest.Ghcb + 0x800;
    private const ulong OutsideBuffer = 0xB000; // shared, outside the GHCB

    private const int SwExitCode = 0x390, Info1 = 0x398, Info2 = 0x3a0, Scratch = 0x3a8;

    /// <summary>SVM_IOIO_STR_MASK | SVM_IOIO_REP_MASK with the size bits and the port (arch/x86/include/asm/svm.h).</summary>
    private static ulong StringIoio(ushort port, int size, bool input) =>
        ((ulong)port << 16) | ((ulong)size << 4) | (1 << 3) | (1 << 2) | (input ? 1UL : 0);

    private static void SetGhcb(Assembler a, int offset, ulong value) => SevEsGuest.SetGhcb(a, offset, value);

    private static void SetValid(Assembler a, params int[] offsets) => SevEsGuest.SetGhcbValid(a, offsets);

    /// <summary>A string IOIO request through the GHCB; sw_exit_info_1/2 afterwards to report[0]/[1].</summary>
    private static void StringRequest(Assembler a, ulong info1, ulong count, ulong scratch, bool scratchValid = true)
    {
        SetGhcb(a, Scratch, scratch);
        SetGhcb(a, SwExitCode, 0x7b);
        SetGhcb(a, Info1, info1);
        SetGhcb(a, Info2, count);
        if (scratchValid) SetValid(a, Scratch, SwExitCode, Info1, Info2);
        else SetValid(a, SwExitCode, Info1, Info2);
        SevEsGuest.WriteGhcbMsr(a, SevEsGuest.Ghcb);
        SevEsGuest.Vmgexit(a);
        a.mov(rbx, (long)GhcbLinear);
        a.mov(rax, __qword_ptr[rbx + Info1]);
        a.mov(rcx, (long)ReportLinear);
        a.mov(__qword_ptr[rcx], rax);
        a.mov(rax, __qword_ptr[rbx + Info2]);
        a.mov(__qword_ptr[rcx + 8], rax);
    }

    private static GhcbAnswer Terminated(SevEsGuest g, byte code)
    {
        var exit = g.Vcpu.RunBounded();
        Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_SYSTEM_EVENT, $"exit {exit.ToString()}");
        Assert.Equal(0x100 | (1 << 12) | ((ulong)code << 16), exit.SystemEventData[0]);
        return new GhcbAnswer(g.ReportQword(0), g.ReportQword(1));
    }

    private readonly record struct GhcbAnswer(ulong Info1, ulong Info2);

    [Theory]
    [InlineData(VmType.SevEs)]
    [InlineData(VmType.Snp)]
    public void Rep_outsb_in_the_ghcb_shared_buffer_exits_once_with_the_count_and_the_bytes(VmType type)
    {
        using var g = SevEsGuest.Create(type, a =>
        {
            if (type == VmType.Snp)
            {
                SevEsGuest.WriteGhcbMsr(a, SevEsGuest.Ghcb | 0x012); // GHCB_MSR_REG_GPA_REQ
                SevEsGuest.Vmgexit(a);
            }
            SetGhcb(a, 0x800, 0x0000_006f_6c6c_6568); // "hello"
            StringRequest(a, StringIoio(0x3f8, 1, input: false), 5, SharedBuffer);
            SevEsGuest.Terminate(a, 0x40);
        });
        var exit = g.Vcpu.RunBounded();
        Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_IO, $"exit {exit.ToString()}");
        Assert.Equal((true, (ushort)0x3f8, 1, 5u), (exit.IoIsOut, exit.IoPort, exit.IoSize, exit.IoCount));
        Assert.Equal("hello"u8.ToArray(), exit.IoData.ToArray());
        Assert.Equal(new GhcbAnswer(0, 0), Terminated(g, 0x40));
    }

    [Fact]
    public void Rep_insw_outside_the_ghcb_exits_and_the_vmm_data_lands_in_the_scratch_area()
    {
        using var g = SevEsGuest.Create(VmType.SevEs, a =>
        {
            StringRequest(a, StringIoio(0x60, 2, input: true), 3, OutsideBuffer);
            SevEsGuest.Terminate(a, 0x41);
        });
        g.Memory.Write(OutsideBuffer, new byte[] { 0xEE, 0xEE, 0xEE, 0xEE, 0xEE, 0xEE, 0xEE, 0xEE });
        var exit = g.Vcpu.RunBounded();
        Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_IO, $"exit {exit.ToString()}");
        Assert.Equal((false, (ushort)0x60, 2, 3u), (exit.IoIsOut, exit.IoPort, exit.IoSize, exit.IoCount));
        // emulator_pio_in_out: "if (in) memset(vcpu->arch.pio_data, 0, size * count)".
        Assert.Equal(new byte[6], exit.IoData.ToArray());
        new byte[] { 1, 2, 3, 4, 5, 6 }.CopyTo(exit.IoData);
        Assert.Equal(new GhcbAnswer(0, 0), Terminated(g, 0x41));
        Assert.Equal(new byte[] { 1, 2, 3, 4, 5, 6, 0xEE, 0xEE }, g.Memory.GetSpan(OutsideBuffer, 8).ToArray());
    }

    [Fact]
    public void A_count_beyond_one_pio_page_exits_in_batches_of_page_size_over_size_elements()
    {
        // 4100 words = 8200 bytes outside the GHCB: batches of 2048 (PAGE_SIZE / 2), 2048 and 4 elements.
        const int Count = 4100;
        using var g = SevEsGuest.Create(VmType.SevEs, a =>
        {
            StringRequest(a, StringIoio(0x80, 2, input: false), Count, OutsideBuffer);
            StringRequest(a, StringIoio(0x81, 1, input: true), Count, OutsideBuffer);
            SevEsGuest.Terminate(a, 0x42);
        });
        var pattern = new byte[2 * Count];
        for (int i = 0; i < pattern.Length; i++) pattern[i] = (byte)(i * 7);
        g.Memory.Write(OutsideBuffer, pattern);
        var seen = new List<byte>();
        foreach (uint batch in new uint[] { 2048, 2048, 4 })
        {
            var exit = g.Vcpu.RunBounded();
            Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_IO, $"exit {exit.ToString()}");
            Assert.Equal((true, (ushort)0x80, 2, batch), (exit.IoIsOut, exit.IoPort, exit.IoSize, exit.IoCount));
            seen.AddRange(exit.IoData.ToArray());
        }
        Assert.Equal(pattern, seen.ToArray());
        // INSB: 4096 then 4 elements, each batch's data copied into the scratch area as it completes.
        int done = 0;
        foreach (uint batch in new uint[] { 4096, 4 })
        {
            var exit = g.Vcpu.RunBounded();
            Assert.True(exit.Reason == KvmExitReason.KVM_EXIT_IO, $"exit {exit.ToString()}");
            Assert.Equal((false, (ushort)0x81, 1, batch), (exit.IoIsOut, exit.IoPort, exit.IoSize, exit.IoCount));
            var data = exit.IoData;
            for (int i = 0; i < data.Length; i++) data[i] = (byte)(0xA0 ^ (done + i));
            done += data.Length;
        }
        Assert.Equal(new GhcbAnswer(0, 0), Terminated(g, 0x42));
        var back = g.Memory.GetSpan(OutsideBuffer, Count).ToArray();
        for (int i = 0; i < Count; i++) Assert.Equal((byte)(0xA0 ^ i), back[i]);
        Assert.Equal(pattern.AsSpan(Count, Count).ToArray(), g.Memory.GetSpan(OutsideBuffer + Count, Count).ToArray()); // untouched
    }

    public static TheoryData<string, ulong, ulong, ulong> BadScratches => new()
    {
        // what, scratch, count, the GHCB_ERR_* in sw_exit_info_2
        { "no sw_scratch valid bit", SharedBuffer, 1, 4 },           // GHCB_ERR_MISSING_INPUT (sev_es_validate_vmgexit)
        { "scratch gpa 0", 0, 1, 3 },                                 // GHCB_ERR_INVALID_SCRATCH_AREA
        { "in the ghcb before the shared buffer", SevEsGuest.Ghcb + 0x400, 1, 3 },
        { "past the ghcb shared buffer", SevEsGuest.Ghcb + 0xff0 - 4, 5, 3 },
        { "outside the ghcb, more than 16 pages", OutsideBuffer, 16 * 4096 + 1, 3 },
    };

    [Theory]
    [MemberData(nameof(BadScratches))]
    public void A_bad_scratch_area_is_answered_with_malformed_input_and_no_exit(string what, ulong scratch, ulong count, ulong reason)
    {
        using var g = SevEsGuest.Create(VmType.SevEs, a =>
        {
            StringRequest(a, StringIoio(0x10, 1, input: false), count, scratch, scratchValid: what != "no sw_scratch valid bit");
            SevEsGuest.Terminate(a, 0x43);
        });
        Assert.Equal(new GhcbAnswer(2, reason), Terminated(g, 0x43));
    }

    [Fact]
    public void A_count_above_int_max_fails_kvm_run_with_einval()
    {
        using var g = SevEsGuest.Create(VmType.SevEs, a =>
        {
            StringRequest(a, StringIoio(0x10, 1, input: false), 0x8000_0000, SharedBuffer);
            SevEsGuest.Terminate(a, 0x44);
        });
        // sev_es_string_io: "if (svm->vmcb->control.exit_info_2 > INT_MAX) return -EINVAL;"
        var ex = Assert.Throws<KvmException>(() => g.Vcpu.RunBounded());
        Assert.Equal(Errno.EINVAL, ex.Errno);
    }
}
