from fgvctune.cli import main

main()
