using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.RegularExpressions;
using KvmSnapshot.Tests.Infrastructure;
using Xunit;

namespace KvmSnapshot.Tests.Module;

/// <summary>
/// about_KvmSnapshot_Safety promises that every guarantee is backed by tests named after it: each section names its
/// tests on a "Tests:" line (xunit Class.Method) and/or a "Pester:" line (the text of an It block), and each named test
/// must exist, so deleting or renaming a test without the page (or the reverse) fails the suite.
/// </summary>
public sealed class SafetyPageTests
{
    private static readonly string Page = File.ReadAllText(Repo.PathOf("docs", "help", "about_KvmSnapshot_Safety.help.md"));

    private static IReadOnlyList<(string Section, string Body)> Sections()
    {
        var parts = Regex.Split(Page, @"^### ", RegexOptions.Multiline).Skip(1);
        return parts.Select(p => (p[..p.IndexOf('\n')].Trim(), p)).ToList();
    }

    [Fact]
    public void Every_section_names_at_least_one_test()
    {
        var sections = Sections();
        Assert.True(sections.Count >= 6, $"expected a section per fault, found {sections.Count}");
        foreach (var (section, body) in sections)
        {
            Assert.True(Regex.IsMatch(body, @"^(Tests|Pester): \S", RegexOptions.Multiline), $"section '{section}' names no test");
        }
    }

    [Fact]
    public void Every_xunit_test_the_page_names_exists()
    {
        var names = Regex.Matches(Page, @"^Tests: (.+)$", RegexOptions.Multiline)
            .SelectMany(m => m.Groups[1].Value.Split(';', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
            .ToList();
        Assert.NotEmpty(names);
        var files = Directory.EnumerateFiles(Repo.PathOf("tests", "KvmSnapshot.Tests"), "*.cs", SearchOption.AllDirectories)
            .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}", StringComparison.Ordinal))
            .ToList();
        var missing = new List<string>();
        foreach (var name in names)
        {
            var dot = name.IndexOf('.');
            Assert.True(dot > 0, $"'{name}' is not Class.Method");
            var (cls, method) = (name[..dot], name[(dot + 1)..]);
            var found = files.Any(f =>
            {
                var text = File.ReadAllText(f);
                return Regex.IsMatch(text, $@"\bclass {Regex.Escape(cls)}\b") && Regex.IsMatch(text, $@"\bvoid {Regex.Escape(method)}\(");
            });
            if (!found) missing.Add(name);
        }
        Assert.True(missing.Count == 0, "the safety page names tests that do not exist: " + string.Join(", ", missing));
    }

    [Fact]
    public void Every_Pester_test_the_page_names_exists()
    {
        var names = Regex.Matches(Page, @"^Pester: (.+)$", RegexOptions.Multiline)
            .SelectMany(m => Regex.Matches(m.Groups[1].Value, "\"([^\"]+)\"").Select(q => q.Groups[1].Value))
            .ToList();
        Assert.NotEmpty(names);
        var pester = string.Join("\n", Directory.EnumerateFiles(Repo.PathOf("tests", "Pester"), "*.Tests.ps1").Select(File.ReadAllText));
        var missing = names.Where(n => !pester.Contains($"It '{n.Replace("'", "''", StringComparison.Ordinal)}'", StringComparison.Ordinal)
                                       && !pester.Contains($"It \"{n}\"", StringComparison.Ordinal)).ToList();
        Assert.True(missing.Count == 0, "the safety page names Pester tests that do not exist: " + string.Join(" | ", missing));
    }
}
