// SPDX-License-Identifier: MIT
using Iced.Intel;
using KvmSharp.Vmm.Loader;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Vmm.Guests;

/// <summary>
/// <c>counter</c>: a guest with state that lives in its globals across calls, for snapshots ("initialise once, run
/// from a copy many times"). Its globals sit at fixed addresses above the image (the image area is the guest's):
/// the counter and an "initialised" flag at <see cref="Globals"/>, a table of <see cref="TableEntries"/> u64 (8 KiB)
/// at <see cref="Table"/>.
/// <list type="bullet">
/// <item><c>init(rounds)</c> → <see cref="TableEntries"/>: fills the table (entry i = <see cref="TableEntry"/>, i.e.
/// i + 1 put through <c>rounds</c> xorshift64 steps — the cost of a guest's start-up, chosen by the caller) and sets
/// the flag.</item>
/// <item><c>increment()</c> → the counter after adding 1.</item>
/// <item><c>get()</c> → the counter.</item>
/// <item><c>lookup(i)</c> → table[i mod <see cref="TableEntries"/>], or <see cref="NotInitialised"/> before init.</item>
/// <item><c>_start</c> → exit(0).</item>
/// </list>
/// </summary>
public static class Counter
{
    /// <summary>GPA of the guest's globals: the counter, then the "initialised" flag.</summary>
    public const ulong Globals = 0x14_0000;

    /// <summary>The counter's address (u64); the "initialised" flag is the u64 after it.</summary>
    public const ulong CounterAddress = Globals;

    /// <summary>GPA of the "initialised" flag (u64): 1 once init ran.</summary>
    public const ulong InitialisedAddress = Globals + 8;

    /// <summary>GPA of the table init fills (<see cref="TableEntries"/> u64).</summary>
    public const ulong Table = 0x15_0000;

    /// <summary>The table's length in entries (8 KiB of u64).</summary>
    public const int TableEntries = 1024;

    /// <summary>What lookup returns before init.</summary>
    public const ulong NotInitialised = ulong.MaxValue;

    /// <summary>The demo's calls: init(1), then increment three times (→ 3); the first call that does not succeed ends it.</summary>
    public static CallResult Demo(MicroVm vm, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(vm);
        CallResult result = vm.Call("init", cancellationToken, 1);
        for (int i = 0; i < 3 && result.IsSuccess; i++) result = vm.Call("increment", cancellationToken);
        return result;
    }

    /// <summary>Table entry <paramref name="index"/> after init(<paramref name="rounds"/>): the guest's computation, in C#.</summary>
    public static ulong TableEntry(int index, ulong rounds)
    {
        ulong x = (ulong)index + 1;
        for (ulong r = 0; r < rounds; r++)
        {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
        }
        return x;
    }

    /// <summary>Assembles the <c>counter</c> guest into an ELF image.</summary>
    public static GuestImage Image()
    {
        var p = new GuestProgram();
        var a = p.Asm;
        Label start = p.Export("_start"), init = p.Export("init"), increment = p.Export("increment");
        Label get = p.Export("get"), lookup = p.Export("lookup");

        p.Place(ref start);
        p.ExitWith(0);

        // init(RDI = rounds)
        p.Place(ref init);
        Label entry = a.CreateLabel(), step = a.CreateLabel(), store = a.CreateLabel(), filled = a.CreateLabel();
        a.mov(r8, Table);
        a.xor(ecx, ecx);
        a.Label(ref entry);
        a.cmp(ecx, TableEntries);
        a.jae(filled);
        a.lea(rax, __[rcx + 1]);
        a.mov(rdx, rdi);
        a.Label(ref step);
        a.test(rdx, rdx);
        a.jz(store);
        a.mov(r9, rax);
        a.shl(r9, 13);
        a.xor(rax, r9);
        a.mov(r9, rax);
        a.shr(r9, 7);
        a.xor(rax, r9);
        a.mov(r9, rax);
        a.shl(r9, 17);
        a.xor(rax, r9);
        a.dec(rdx);
        a.jmp(step);
        a.Label(ref store);
        a.mov(__qword_ptr[r8 + rcx * 8], rax);
        a.inc(ecx);
        a.jmp(entry);
        a.Label(ref filled);
        a.mov(r8, Globals);
        a.mov(__qword_ptr[r8 + 8], 1);
        a.mov(eax, TableEntries);
        a.ret();

        // increment()
        p.Place(ref increment);
        a.mov(r8, Globals);
        a.mov(rax, __qword_ptr[r8]);
        a.inc(rax);
        a.mov(__qword_ptr[r8], rax);
        a.ret();

        // get()
        p.Place(ref get);
        a.mov(r8, Globals);
        a.mov(rax, __qword_ptr[r8]);
        a.ret();

        // lookup(RDI = i)
        p.Place(ref lookup);
        Label ready = a.CreateLabel();
        a.mov(r8, Globals);
        a.cmp(__qword_ptr[r8 + 8], 0);
        a.jne(ready);
        a.mov(rax, NotInitialised);
        a.ret();
        a.Label(ref ready);
        a.and(edi, TableEntries - 1);
        a.mov(r8, Table);
        a.mov(rax, __qword_ptr[r8 + rdi * 8]);
        a.ret();

        return p.Build(start);
    }
}
