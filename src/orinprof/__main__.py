from orinprof.cli import main

main()
