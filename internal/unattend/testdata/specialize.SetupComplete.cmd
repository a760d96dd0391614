@echo off
rem Written by Imprint. Setup has used the answer file; it holds secrets, so remove it.
del /f /q "%WINDIR%\Panther\unattend.xml" >nul 2>&1
