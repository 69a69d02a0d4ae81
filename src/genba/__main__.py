from genba.cli import main

main()
