from hsmnode.cli.main import main

main()
