// SPDX-License-Identifier: MIT
using Iced.Intel;
using KvmSharp.Vmm.Guests;
using KvmSharp.Vmm.HostCalls;
using KvmSharp.Vmm.Loader;
using static Iced.Intel.AssemblerRegisters;

namespace SandboxServer;

/// <summary>
/// The untrusted code the server runs: <c>quote(request)</c>, where the request is bytes [command, item, quantity].
/// It is built with <see cref="GuestProgram"/>, the assembler-backed builder the built-in demo guests use, so the one
/// image can misbehave in every way a server must survive.
/// </summary>
internal static class QuoteGuest
{
    /// <summary>The host function the guest calls by this fixed id: <c>price(item)</c>.</summary>
    public const uint PriceId = 1;

    /// <summary>The status <c>price</c> answers for an item it does not sell.</summary>
    public const HostCallStatus UnknownItem = HostCallStatus.FirstApplicationStatus;

    /// <summary>The exit status the guest ends with when <c>price</c> does not know the item.</summary>
    public const int NoSuchItemStatus = 4;

    // Commands (the request's first byte).
    public const byte Quote = (byte)'q';        // price(item) * quantity
    public const byte Spin = (byte)'s';         // loops forever
    public const byte Divide = (byte)'d';       // divides by the quantity (0 → #DE)
    public const byte BadPort = (byte)'b';      // writes to a port no device claims

    /// <summary>
    /// The host functions the guest may call. <c>price</c> stands for a backend: it throws for
    /// <paramref name="brokenItem"/>, as a backend that is down would.
    /// </summary>
    public static HostFunctions Functions(IReadOnlyDictionary<byte, ulong> prices, byte brokenItem)
    {
        var functions = new HostFunctions();
        functions.Add(PriceId, "price", context =>
        {
            byte item = (byte)context.Args[0];
            if (item == brokenItem) throw new InvalidOperationException($"the price backend is down for item {item}");
            if (prices.TryGetValue(item, out ulong price)) return price;
            context.Status = UnknownItem;
            return 0;
        });
        return functions;
    }

    public static GuestImage Image()
    {
        var program = new GuestProgram();
        Assembler a = program.Asm;
        Label start = program.Export("_start");
        Label quote = program.Export("quote");
        Label spin = a.CreateLabel(), divide = a.CreateLabel(), badPort = a.CreateLabel(), empty = a.CreateLabel();
        Label known = a.CreateLabel();

        // _start runs once per micro-VM (the entry point): nothing to set up.
        program.Place(ref start);
        program.ExitWith(0);

        // quote(RDI = request, RSI = length): the call ABI passes the input bytes' address and length.
        program.Place(ref quote);
        a.cmp(rsi, 3);
        a.jb(empty);
        a.movzx(eax, __byte_ptr[rdi]);
        a.cmp(al, Spin);
        a.je(spin);
        a.cmp(al, Divide);
        a.je(divide);
        a.cmp(al, BadPort);
        a.je(badPort);

        // Quote: price(item) through the host, times quantity. The host call keeps RDI, so the request stays at hand.
        a.push(rdi);
        a.movzx(edi, __byte_ptr[rdi + 1]);
        program.HostCall(PriceId);          // RAX = price, RDX = status
        a.pop(rdi);
        a.test(rdx, rdx);
        a.jz(known);
        program.ExitWith(NoSuchItemStatus); // an application error: the call ends with a non-zero exit status
        a.Label(ref known);
        a.movzx(ecx, __byte_ptr[rdi + 2]);
        a.imul(rax, rcx);
        a.ret();

        a.Label(ref spin);
        a.jmp(spin);

        a.Label(ref divide);
        a.movzx(ecx, __byte_ptr[rdi + 2]);
        a.mov(eax, 1000);
        a.xor(edx, edx);
        a.div(ecx);
        a.ret();

        a.Label(ref badPort);
        a.mov(dx, 0x1234);
        a.@out(dx, al);
        a.ret();

        a.Label(ref empty);
        a.xor(eax, eax);
        a.ret();

        return program.Build(start);
    }
}
