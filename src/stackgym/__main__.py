from stackgym.cli import main

main()
