// SPDX-License-Identifier: MIT
using Iced.Intel;
using KvmSharp.Vmm.GuestAbi;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Vmm.Arch.X86_64;

/// <summary>
/// The code of an SEV-SNP micro-VM's trampoline page (<see cref="Layout.Trampoline"/>, private and measured by
/// SNP_LAUNCH_UPDATE like the rest of the VMM's pages): the guest-side dispatch loop that lets a micro-VM whose vCPU
/// registers SNP_LAUNCH_FINISH sealed take many calls. The host cannot set RIP or arguments any more, so it writes each
/// request into the shared call region and resumes the vCPU (KVM_RUN); the dispatcher reads it and enters the function.
/// <list type="bullet">
/// <item>At <see cref="Layout.Trampoline"/>, the return trampoline, as for every micro-VM: a guest function's RET lands
/// here; RAX goes to CallRegion.result, CallRegion.entry is zeroed (<see cref="ReturnedHere"/>) and an OUT to
/// <see cref="Ports.Return"/> hands control back. Unlike the plain <see cref="Trampoline"/> (which halts after the OUT:
/// the host never resumes a call that returned) it then falls into the dispatcher, which is where the host's next
/// KVM_RUN resumes the vCPU.</item>
/// <item><see cref="Dispatch"/>: RSP = <see cref="Layout.StackTop"/> − 8 holding the trampoline's address, the entry
/// and the six arguments read once each from the call region into registers (no second read a host could race), the
/// entry checked to lie in the image area [<see cref="Layout.ImageBase"/>, memory size) — the size is a private,
/// measured u64 of this page (<see cref="EntryLimit"/>), not a shared value — every other general register zeroed,
/// RFLAGS = 0x2, and a RET into the function. An entry outside the image area is a UD2: the VMM's handler reports #UD
/// and the micro-VM takes no further call (the host checks the entry before it writes one, so only a tampered request
/// gets there). The first call of an SNP micro-VM enters here too, from <see cref="SnpRuntime.Start"/> (where the host
/// sets RIP before the launch seals it), which registers the GHCB first, so every call of it runs the same code.</item>
/// </list>
/// In an SNP micro-VM the trampoline's OUT raises #VC, which <see cref="SnpRuntime"/> (after the dispatcher in this
/// page) serves through the GHCB and returns from, so the vCPU falls into the dispatcher as described.
/// A TD micro-VM uses the same page unchanged (<see cref="TdRuntime"/> adds its boot entry and #VE handler after it):
/// its vCPU reaches <see cref="Dispatch"/> from its boot stub, and the trampoline's OUT becomes a #VE that the handler
/// serves and returns from, so the vCPU falls into the dispatcher just the same.
/// </summary>
public static class SnpDispatcher
{
    private static readonly (byte[] Code, ulong Dispatch) Assembled = Assemble();

    /// <summary>The assembled trampoline and dispatcher, as placed at <see cref="Layout.Trampoline"/>.</summary>
    public static ReadOnlySpan<byte> Bytes => Assembled.Code;

    /// <summary>The dispatcher's guest address: where an SNP micro-VM's vCPU starts and where it resumes after a return.</summary>
    public static ulong Dispatch => Assembled.Dispatch;

    /// <summary>
    /// The guest address of the u64 the dispatcher compares an entry with, the last 8 bytes of its page: one past the
    /// last byte of guest memory, written by <see cref="Write"/>.
    /// </summary>
    public const ulong EntryLimit = Layout.Trampoline + Layout.PageSize - sizeof(ulong);

    /// <summary>
    /// Copies <see cref="Bytes"/> to <see cref="Layout.Trampoline"/> in <paramref name="memory"/> and stores its size
    /// at <see cref="EntryLimit"/>.
    /// </summary>
    /// <exception cref="ArgumentNullException"><paramref name="memory"/> is null.</exception>
    public static void Write(GuestMemory memory)
    {
        ArgumentNullException.ThrowIfNull(memory);
        memory.Write(Layout.Trampoline, Assembled.Code);
        memory.Write(EntryLimit, memory.Size);
    }

    /// <summary>
    /// True when a call that ended at an OUT to the return port went through this trampoline — which zeroes the
    /// request's entry, <paramref name="entryAfterReturn"/> — so that the vCPU waits in the dispatcher; false for a
    /// guest that OUTs to the port from its own code (resuming it would run that code on, not the next request). A value
    /// read back from shared memory: a guest can fake it, and so only harm itself.
    /// </summary>
    public static bool ReturnedHere(ulong entryAfterReturn) => entryAfterReturn == 0;

    /// <summary>True when the dispatcher enters <paramref name="entry"/> in a guest memory of <paramref name="memorySize"/> bytes.</summary>
    public static bool Accepts(ulong entry, ulong memorySize) => entry >= Layout.ImageBase && entry < memorySize;

    private static (byte[], ulong) Assemble()
    {
        var a = new Assembler(64);
        Label dispatch = a.CreateLabel("dispatch"), refuse = a.CreateLabel("refuse");

        // The return trampoline (Trampoline's code, then on into the dispatcher instead of HLT), which also zeroes the
        // request's entry: the host's sign that the vCPU returned here, into the dispatcher, and can take a call.
        a.mov(rdi, CallRegion.Address(CallRegion.Result));
        a.mov(__qword_ptr[rdi], rax);
        a.mov(__qword_ptr[rdi - (int)(CallRegion.Result - CallRegion.Entry)], 0);
        a.mov(dx, Ports.Return);
        a.@out(dx, al);

        a.Label(ref dispatch);
        a.mov(rsp, Layout.StackTop - sizeof(ulong));
        a.mov(rsi, Layout.CallRegion);
        a.mov(rax, __qword_ptr[rsi + (int)CallRegion.Entry]);
        a.cmp(rax, (int)Layout.ImageBase);
        a.jb(refuse);
        a.cmp(rax, __qword_ptr[EntryLimit]);
        a.jae(refuse);
        // [RSP] = the trampoline (the function's return address), [RSP - 8] = the entry, popped by the RET below.
        a.mov(rdx, Layout.Trampoline);
        a.mov(__qword_ptr[rsp], rdx);
        a.mov(__qword_ptr[rsp - sizeof(ulong)], rax);
        a.sub(rsp, sizeof(ulong));
        // SysV argument registers; RSI (the region's base) last.
        AssemblerRegister64[] order = [rdi, rsi, rdx, rcx, r8, r9];
        for (int i = order.Length - 1; i >= 0; i--)
        {
            if (i == 1) continue;
            a.mov(order[i], __qword_ptr[rsi + (int)(CallRegion.Args + (ulong)(i * sizeof(ulong)))]);
        }
        a.mov(rsi, __qword_ptr[rsi + (int)(CallRegion.Args + sizeof(ulong))]);
        foreach (AssemblerRegister32 r in new[] { eax, ebx, ebp, r10d, r11d, r12d, r13d, r14d, r15d }) a.xor(r, r);
        // RFLAGS last (the XORs set ZF and PF): only the always-one bit, as LongMode.InitialRflags (IF, DF, TF … clear).
        // The push lands below the entry slot, and the POPFQ gives RSP back.
        a.push(2);
        a.popfq();
        a.ret();

        a.Label(ref refuse);
        a.ud2();

        using var stream = new MemoryStream();
        var result = a.Assemble(new StreamCodeWriter(stream), Layout.Trampoline, BlockEncoderOptions.ReturnNewInstructionOffsets);
        byte[] code = stream.ToArray();
        if ((ulong)code.Length > EntryLimit - Layout.Trampoline) throw new InvalidOperationException($"the SNP dispatcher takes {code.Length} bytes, more than its page");
        return (code, result.GetLabelRIP(dispatch));
    }
}
