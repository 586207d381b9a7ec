<#
.SYNOPSIS
  Installs protowatch as a Windows service on an instrument PC.

.DESCRIPTION
  Copies protowatch.exe to "C:\Program Files\protowatch", puts the config under
  "%ProgramData%\protowatch" (keeping an existing one), checks it, registers the
  service "protowatch" (automatic start, restarted on failure) and starts it.
  Run from an elevated PowerShell in the folder that holds protowatch.exe and
  config.json (or config.example.json).

.PARAMETER Uninstall
  Stops and removes the service. The config and the state folder stay.

.PARAMETER RestrictConfig
  Lets only Administrators and SYSTEM read %ProgramData%\protowatch (the config holds
  the SMTP password and the bot token). Leave it off while measurement scripts run
  `protowatch send-message` as ordinary users: they read the config.

.EXAMPLE
  powershell -ExecutionPolicy Bypass -File install.ps1
.EXAMPLE
  powershell -ExecutionPolicy Bypass -File install.ps1 -Uninstall
#>
param([switch]$Uninstall, [switch]$RestrictConfig)

$ErrorActionPreference = 'Stop'
$InstallDir = Join-Path $env:ProgramFiles 'protowatch'
$DataDir = Join-Path $env:ProgramData 'protowatch'
$Exe = Join-Path $InstallDir 'protowatch.exe'
$Config = Join-Path $DataDir 'config.json'

if ($Uninstall) {
    & $Exe service uninstall
    if ($LASTEXITCODE -ne 0) { throw "protowatch service uninstall failed ($LASTEXITCODE)" }
    Write-Host "Service removed. Config and state are kept in $DataDir."
    return
}

New-Item -ItemType Directory -Force -Path $InstallDir, $DataDir | Out-Null
Copy-Item -Force (Join-Path $PSScriptRoot 'protowatch.exe') $Exe

if (-not (Test-Path $Config)) {
    $Source = Join-Path $PSScriptRoot 'config.json'
    if (-not (Test-Path $Source)) { $Source = Join-Path $PSScriptRoot 'config.example.json' }
    Copy-Item $Source $Config
    Write-Host "Wrote $Config - edit it (mail, telegram, watch paths), then run this script again."
}

# Members of the local group protowatch may use the agent (send-message, alerts): it
# may read the API token in the state folder.
if (-not (Get-LocalGroup -Name protowatch -ErrorAction SilentlyContinue)) {
    New-LocalGroup -Name protowatch -Description 'May use the protowatch agent (send-message, alerts)' | Out-Null
}

& $Exe --config $Config check-config | Out-Null
if ($LASTEXITCODE -ne 0) { throw "The config $Config has errors (see above); fix it and run this script again." }

if (Get-Service -Name protowatch -ErrorAction SilentlyContinue) {
    & $Exe service uninstall | Out-Null
}
# Registers the service as the virtual account NT SERVICE\protowatch, gives it the state
# folder (private to it, Administrators, SYSTEM and the group protowatch) and read access
# to the watched folders.
& $Exe --config $Config service install
if ($LASTEXITCODE -ne 0) { throw "protowatch service install failed ($LASTEXITCODE)" }

if ($RestrictConfig) {
    # The config holds the SMTP password and the bot token: Administrators, SYSTEM, the
    # service's account and the group protowatch may read it, nobody else.
    icacls $DataDir /inheritance:r /grant:r 'Administrators:(OI)(CI)F' 'SYSTEM:(OI)(CI)F' 'NT SERVICE\protowatch:(OI)(CI)RX' 'protowatch:(OI)(CI)RX' | Out-Null
}

# Restart after a crash: after 10 s, 30 s, then every 60 s.
sc.exe failure protowatch reset= 86400 actions= restart/10000/restart/30000/restart/60000 | Out-Null
Start-Service -Name protowatch
Get-Service -Name protowatch
Write-Host "Logs: $(Join-Path $DataDir '.protowatch\protowatch.log')"
