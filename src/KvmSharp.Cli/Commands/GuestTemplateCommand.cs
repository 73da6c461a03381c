// SPDX-License-Identifier: MIT
using System.CommandLine;
using KvmSharp.Vmm;

namespace KvmSharp.Cli.Commands;

/// <summary>
/// <c>kvmsharp new-guest DIR</c>: starts a C guest without NuGet — writes the guest SDK's header
/// (<see cref="GuestSdk.Header"/>, the copy embedded in KvmSharp.Vmm), an example <c>guest.c</c> (hello from
/// <c>_start</c>, <c>add</c>, <c>sum</c>) and a Makefile with <see cref="GuestSdk.CompilerArguments"/> into DIR, then
/// says how to build and run it. It refuses, writing nothing, when any of the three files already exists.
/// </summary>
public static class GuestTemplateCommand
{
    /// <summary>The example guest's file name.</summary>
    public const string SourceFileName = "guest.c";

    /// <summary>The Makefile's name.</summary>
    public const string MakefileName = "Makefile";

    /// <summary>What <c>make</c> builds.</summary>
    public const string ImageFileName = "guest.elf";

    /// <summary>What _start prints.</summary>
    public const string Greeting = "Hello from a C guest!";

    public static Command Create()
    {
        var directory = new Argument<string>("DIR") { Description = "Where to write kvmsharp_guest.h, guest.c and a Makefile (created if missing)" };
        var command = new Command("new-guest", "Write a C guest template: the guest SDK header, an example guest.c and a Makefile") { directory };
        command.SetAction(result => Run(result.GetValue(directory)!, result.InvocationConfiguration.Output));
        return command;
    }

    public static int Run(string directory, TextWriter output)
    {
        ArgumentNullException.ThrowIfNull(directory);
        ArgumentNullException.ThrowIfNull(output);
        var files = new (string Name, string Text)[]
        {
            (GuestSdk.HeaderFileName, GuestSdk.Header),
            (SourceFileName, ExampleSource),
            (MakefileName, Makefile),
        };
        // All or nothing: a guest author's edited guest.c (or a newer header) is never overwritten, and a refusal
        // leaves no half-written template behind.
        string[] existing = [.. files.Select(f => Path.Combine(directory, f.Name)).Where(Path.Exists)];
        if (existing.Length > 0)
            throw new UsageException($"new-guest: {string.Join(", ", existing)} already exist{(existing.Length == 1 ? "s" : "")}: nothing written (pick another directory or move them)");
        Directory.CreateDirectory(directory);
        foreach (var (name, text) in files)
        {
            // CreateNew: a file that appeared since the check above is still not overwritten.
            using var stream = new FileStream(Path.Combine(directory, name), FileMode.CreateNew, FileAccess.Write);
            using var writer = new StreamWriter(stream);
            writer.Write(text);
            output.WriteLine($"wrote {Path.Combine(directory, name)}");
        }
        output.WriteLine($"build: make -C {directory}   (gcc or clang, no libc)");
        output.WriteLine($"run:   {CliApp.CommandName} run {Path.Combine(directory, ImageFileName)} --call add:2,3 --call sum:1,2,3");
        return ExitCodes.Ok;
    }

    /// <summary>The Makefile: one rule, the compiler arguments the sandbox's loader expects.</summary>
    public static string Makefile =>
        $"""
        # Builds {ImageFileName}, a guest for KvmSharp micro-VMs (GUEST-ABI.md in the KvmSharp.Vmm package).
        # make CC=clang works too. Run it: {CliApp.CommandName} run {ImageFileName} --call add:2,3
        CC = gcc
        CFLAGS = {string.Join(' ', GuestSdk.CompilerArguments)} -Wall -Wextra

        {ImageFileName}: {SourceFileName} {GuestSdk.HeaderFileName}
        {'\t'}$(CC) $(CFLAGS) -o $@ {SourceFileName}

        clean:
        {'\t'}rm -f {ImageFileName}

        .PHONY: clean

        """;

    /// <summary>The example guest: hello from <c>_start</c>, <c>add(a, b)</c>, <c>sum(…)</c> of up to six arguments or of input bytes.</summary>
    public static string ExampleSource =>
        $$"""
        /* A KvmSharp micro-VM guest (GUEST-ABI.md): freestanding C, no libc. Build with make, then
         *   kvmsharp run {{ImageFileName}}                                 runs _start: prints a greeting
         *   kvmsharp run {{ImageFileName}} --call add:2,3 --call sum:1,2,3  calls functions by name
         * Every global function is callable by name (keep the ELF unstripped); a return ends the call with its value. */
        #define KVMSHARP_GUEST_MEMFUNCS /* in one file: memcpy, memset … for the compiler */
        #include "{{GuestSdk.HeaderFileName}}"

        /* The entry point (vm.Run(), or kvmsharp run without --call). Returning ends the run with status 0;
         * kvms_exit(n) ends it with status n. kvms_printf takes C's integer and string conversions. */
        void _start(void)
        {
            kvms_printf("{{Greeting}} ABI version %u\n", kvms_abi_version());
        }

        /* Integer arguments arrive as ordinary SysV parameters (at most six). */
        kvms_u64 add(kvms_u64 a, kvms_u64 b)
        {
            return a + b;
        }

        /* Any number of arguments, read from the call region; or, for a call with input bytes
         * (vm.Call("sum", bytes)), their sum — handed back as 8 output bytes too. */
        kvms_u64 sum(void)
        {
            kvms_u64 total = 0;
            if (kvms_input_len() > 0) {
                const kvms_u8 *in = kvms_input();
                for (kvms_u64 i = 0; i < kvms_input_len(); i++) total += in[i];
                kvms_output(&total, sizeof total);
                return total;
            }
            for (unsigned i = 0; i < kvms_arg_count(); i++) total += kvms_arg(i);
            return total;
        }

        """;
}
