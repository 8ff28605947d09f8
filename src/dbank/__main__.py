from dbank.cli import main

main()
