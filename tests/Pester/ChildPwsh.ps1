# Dot-sourced by the Pester suites that need a second, fresh pwsh of the same version as the one running them:
# -WhatIf and -Confirm messages go to the host, not to any stream, so they are read from a child's stdout; and an
# installed module is imported by name in a process that never saw output/. Not a test file itself.

# The command line that starts another pwsh of this version. As a dotnet tool (`dotnet pwsh`) this process is the
# dotnet host, which runs pwsh.dll from $PSHOME; an installed pwsh is its own executable.
function Get-ChildPwshCommand {
    $process = [Environment]::ProcessPath
    if ([IO.Path]::GetFileNameWithoutExtension($process) -eq 'dotnet') { return @($process, (Join-Path $PSHOME 'pwsh.dll')) }
    , @($process)
}

# Starts a fresh, non-interactive pwsh (no profile) on the script file $File with stdout and stderr redirected, and
# returns the process; the caller reads its streams, waits for it or kills it.
function Start-ChildPwshProcess {
    param([Parameter(Mandatory)][string] $File)
    $command = Get-ChildPwshCommand
    $psi = [Diagnostics.ProcessStartInfo]::new($command[0])
    foreach ($a in @($command | Select-Object -Skip 1) + @('-NoProfile', '-NonInteractive', '-File', $File)) { $psi.ArgumentList.Add($a) }
    $psi.RedirectStandardOutput = $true
    $psi.RedirectStandardError = $true
    $psi.UseShellExecute = $false
    [Diagnostics.Process]::Start($psi)
}

# Runs $Script in a fresh, non-interactive pwsh (no profile, plain-text output) with the given environment
# variables set for it; returns its exit code and everything it printed (stdout and stderr) as lines.
function Invoke-ChildPwsh {
    param(
        [Parameter(Mandatory)][string] $Script,
        [hashtable] $Environment = @{}
    )
    $file = Join-Path $TestDrive ('child-' + [guid]::NewGuid().ToString('n') + '.ps1')
    Set-Content -LiteralPath $file -Value ("`$PSStyle.OutputRendering = 'PlainText'`n" + $Script)
    $command = Get-ChildPwshCommand
    $saved = @{}
    foreach ($name in $Environment.Keys) {
        $saved[$name] = [Environment]::GetEnvironmentVariable($name)
        [Environment]::SetEnvironmentVariable($name, $Environment[$name])
    }
    try {
        $output = & $command[0] @($command | Select-Object -Skip 1) -NoProfile -NonInteractive -File $file 2>&1
        $exitCode = $LASTEXITCODE
    }
    finally {
        foreach ($name in $saved.Keys) { [Environment]::SetEnvironmentVariable($name, $saved[$name]) }
    }
    $lines = @($output | ForEach-Object { "$_" })
    [pscustomobject]@{ ExitCode = $exitCode; Lines = $lines; Text = $lines -join "`n" }
}

# Splits a child's output into sections, one per line "##CASE <name>" it printed: name -> the lines after it.
function Split-ChildSection {
    param([string[]] $Lines)
    $sections = @{}
    $current = $null
    foreach ($line in $Lines) {
        if ($line -match '^##CASE (.+)$') { $current = $Matches[1]; $sections[$current] = [Collections.Generic.List[string]]::new(); continue }
        if ($null -ne $current) { $sections[$current].Add($line) }
    }
    $sections
}

# A single-quoted PowerShell literal of $Value, for values written into a child's script.
function ConvertTo-PSLiteral {
    param([string] $Value)
    "'" + ($Value -replace "'", "''") + "'"
}
